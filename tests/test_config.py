"""Config: defaults ⊕ YAML ⊕ key=value; unknown keys and bad values fail naming the key and nearest names."""

from __future__ import annotations

import pytest

from mmsft.config import ConfigError, RunConfig, config_reference, load_config, parse_overrides


def test_layering(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.001\ntrain:\n  max_steps: 7\n")
    cfg = load_config(path, ["optim.lr=2e-4", "lora.enabled=true", "data.padding_side=left"])
    assert cfg.optim.lr == 2e-4 and cfg.train.max_steps == 7 and cfg.lora.enabled is True
    assert cfg.data.padding_side == "left" and cfg.train.micro_batch_size == RunConfig().train.micro_batch_size


@pytest.mark.parametrize("override,match", [
    ("optim.lrr=1", r"unknown config key 'optim.lrr'.*Did you mean 'lr'"),
    ("trian.max_steps=1", r"unknown config key 'trian'.*Did you mean 'train'"),
    ("optim.lr=fast", r"'optim.lr': expected a number, got 'fast'"),
    ("train.max_steps=1.5", r"'train.max_steps': expected an integer, got 1.5"),
    ("lora.enabled=maybe", r"'lora.enabled': expected true/false"),
    ("data.overlong=skip", r"'data.overlong': 'skip' is not one of \['drop', 'truncate', 'error'\]"),
    ("objective.loss_agg_mode=token_mean", r"Did you mean 'token-mean'"),
    ("optim=3", r"'optim' is a section"),
    ("novalue", r"not of the form key=value"),
])
def test_errors_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  max_stepz: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'train.max_stepz'"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_overrides_parse_yaml_scalars():
    assert parse_overrides(["a.b=1", "a.c=true", "d=x"]) == {"a": {"b": 1, "c": True}, "d": "x"}


def test_reference_lists_every_key():
    text = config_reference()
    for key in ("`model.name_or_path`", "`optim.lr`", "`data.video_max_frames`", "`objective.loss_agg_mode`"):
        assert key in text
