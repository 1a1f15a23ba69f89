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


# ---------------------------------------------------------------------------------------------- bounds (issue 8)
_BOUNDED_SECTIONS = ("model", "lora", "data", "objective", "rl", "mix", "optim", "train", "eval")


def test_defaults_satisfy_every_bound_and_numeric_fields_declare_one():
    import dataclasses

    from mmsft.config_base import _bounds, validate

    cfg = RunConfig()
    validate(cfg)
    for section in _BOUNDED_SECTIONS:
        for f in dataclasses.fields(getattr(cfg, section)):
            if f.type in ("int", "float", int, float):
                assert _bounds(f), f"{section}.{f.name} declares no bounds"


@pytest.mark.parametrize("text", ["train:\n  mixed_precision: no\n", "train:\n  mixed_precision: 'no'\n",
                                  "train:\n  mixed_precision: off\n"])
def test_yaml_no_is_the_string_no_for_mixed_precision(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert load_config(path).train.mixed_precision == "no"
    assert load_config(None, ["train.mixed_precision=no"]).train.mixed_precision == "no"


def test_sibling_bounds_apply_after_every_layer(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  image_min_pixels: 300000\n")  # above the default max, fixed by the override below
    cfg = load_config(path, ["data.image_max_pixels=400000"])
    assert (cfg.data.image_min_pixels, cfg.data.image_max_pixels) == (300000, 400000)
    with pytest.raises(ConfigError, match=r"<= data.image_max_pixels \(200704\), got 300000"):
        load_config(path)


@pytest.mark.parametrize("override,value", [("train.max_steps=1e3", 1000), ("optim.lr=3", 3.0),
                                            ("train.seed=4294967295", 2**32 - 1), ("data.video_fps=0.5", 0.5),
                                            ("optim.warmup_ratio=1", 1.0), ("train.max_steps=0", 0)])
def test_values_on_and_inside_the_bounds_are_accepted(override, value):
    section, key = override.split("=")[0].split(".")
    assert getattr(getattr(load_config(None, [override]), section), key) == value


def test_reference_shows_bounds_and_component_args_share_the_mechanism():
    import dataclasses

    from mmsft.config import coerce_value

    text = config_reference()
    assert "| `train.micro_batch_size` | `4` | >= 1 |" in text
    assert "| `optim.warmup_ratio` | `0.0` | >= 0 and <= 1 |" in text
    assert "| `data.image_min_pixels` | `3136` | >= 1 and <= data.image_max_pixels |" in text

    @dataclasses.dataclass
    class Args:
        clip: float = dataclasses.field(default=0.2, metadata={"help": "h", "ge": 0, "lt": 1})

    f = dataclasses.fields(Args)[0]
    assert coerce_value("0.3", f, "objective.args.clip", Args) == 0.3
    with pytest.raises(ConfigError, match=r"'objective.args.clip': expected a number >= 0 and < 1, got 1.0"):
        coerce_value(1, f, "objective.args.clip", Args)
    with pytest.raises(ConfigError, match=r"'objective.args.clip': expected a finite number, got nan"):
        coerce_value(float("nan"), f, "objective.args.clip", Args)
