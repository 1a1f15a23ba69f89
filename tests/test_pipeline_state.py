"""Which config differences stop a pipeline from reusing a finished stage (mmsft/pipeline/state.py)."""

from __future__ import annotations

from mmsft.config import RunConfig, to_dict
from mmsft.pipeline.state import config_changes, fingerprint


def test_a_key_added_at_its_default_is_not_a_change():
    defaults = fingerprint(to_dict(RunConfig()))
    new = dict(defaults)
    old = {k: v for k, v in new.items() if k != "data.packing"}  # a run recorded before the key existed
    assert config_changes(old, new, defaults=defaults) == []
    assert config_changes(old, new) == ["data.packing: '<absent>' -> False"]  # without defaults: reported


def test_real_changes_are_still_reported():
    defaults = fingerprint(to_dict(RunConfig()))
    old = {k: v for k, v in defaults.items() if k != "data.packing"}
    new = dict(defaults, **{"data.packing": True, "optim.lr": 0.5})
    changes = config_changes(old, new, defaults=defaults)
    assert "data.packing: '<absent>' -> True" in changes
    assert any(c.startswith("optim.lr: ") and c.endswith("-> 0.5") for c in changes) and len(changes) == 2
    removed = {k: v for k, v in new.items() if k != "optim.lr"}
    assert any(c.startswith("optim.lr: ") and c.endswith("-> '<absent>'") for c in config_changes(new, removed,
                                                                                                   defaults=defaults))
