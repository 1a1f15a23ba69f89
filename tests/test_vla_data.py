"""Robot demonstrations -> VLA without the simulator: the episode-folder dataset view (chunk targets, split by
episode, bad episodes), action statistics fitted on the demonstrations and recorded with the model, in-memory
images, any VLA folder (tiny VLA, a Qwen2.5-VL that becomes one, an OpenVLA-style dataset_statistics.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsft.data.loaders import load_dataset
from mmsft.data.media import MediaBudget
from mmsft.data.schema import DataError, Message, Part, Sample
from mmsft.models.action_tokenizer import ActionTokenizer
from tasks.libero.dataset import EPISODE_FORMAT, EpisodeArgs, EpisodeSamples, load_episodes
from tasks.libero.episodes import append_index, write_episode
from tasks.libero.prompt import InterfaceError, VLAInterface

STEPS = (5, 7, 4)


def make_episodes(root: Path, steps=STEPS, size: int = 16, tasks=(0, 0, 1), seed: int = 0) -> Path:
    """A collect-libero folder of synthetic episodes (random frames / actions), no simulator needed."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({"format": EPISODE_FORMAT, "render": "fast"}))
    rng = np.random.default_rng(seed)
    for ep, (n, task) in enumerate(zip(steps, tasks)):
        row = write_episode(root, suite="libero_spatial", task_id=task, init_state=ep, episode_id=ep,
                            instruction=f"Pick up bowl {task}.", success=True,
                            images={"agentview": [rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                                                  for _ in range(n)],
                                    "wrist": [rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                                              for _ in range(n)]},
                            proprio=[rng.normal(size=8) for _ in range(n)],
                            actions=[rng.uniform(-1, 1, 7) for _ in range(n)], rewards=[0.0] * n)
        append_index(root, row)
    return root


@pytest.fixture()
def episodes(tmp_path) -> Path:
    return make_episodes(tmp_path / "demos")


def test_chunk_targets_equal_recorded_actions(episodes):
    samples = load_dataset(episodes, loader_args={"chunk": 3})  # detected: data.loader auto
    assert isinstance(samples, EpisodeSamples) and len(samples) == sum(STEPS)
    recorded = [np.load(episodes / row["file"])["actions"] for row in map(json.loads, (episodes / "index.jsonl")
                                                                            .read_text().splitlines())]
    k = 0
    for actions in recorded:
        for t in range(len(actions)):
            sample = samples[k]
            want = actions[[min(t + j, len(actions) - 1) for j in range(3)]]  # last action repeats at the end
            np.testing.assert_array_equal(np.asarray(sample.actions, dtype=np.float32), want)
            image = sample.messages[0].parts[0]
            assert image.type == "image" and image.path is None and image.array.shape == (16, 16, 3)
            task = sample.meta["task_id"]
            assert sample.messages[0].text == f"What action should the robot take to pick up bowl {task}?"
            k += 1
    assert samples.padded_targets == sum(min(2, n) for n in STEPS)
    assert [s.id for s in samples[:2]] == ["libero_spatial_task00_init00_ep00000/t0000",
                                           "libero_spatial_task00_init00_ep00000/t0001"]


def test_split_by_episode_and_proprio(episodes):
    # task 0 has two episodes (init 0, 1): init 1 is validation; task 1 has one, so val_episodes=1 leaves none
    with pytest.raises(DataError, match="task 1 has 1 episodes"):
        load_episodes(episodes, {"val_episodes": 1}, "train")
    train = load_episodes(episodes, {"tasks": [0], "val_episodes": 1, "proprio": True,
                                     "cameras": ["agentview", "wrist"]}, "train")
    val = load_episodes(episodes, {"tasks": [0], "val_episodes": 1, "split": "val"}, "train")
    assert len(train) == STEPS[0] and len(val) == STEPS[1]
    assert {s.meta["init_state"] for s in train} == {0} and {s.meta["init_state"] for s in val} == {1}
    sample = train[0]
    assert [p.type for p in sample.messages[0].parts] == ["image", "image", "text"]
    text = sample.messages[0].text
    assert "\nRobot state: " in text and len(text.split("state: ")[1].split()) == 8


def test_loader_errors_name_the_file_and_key(episodes, tmp_path):
    with pytest.raises(DataError, match="data.loader_args.chunk"):
        load_episodes(episodes, {"chunk": 0}, "train")
    with pytest.raises(DataError, match=r"\['chonk'\] are not arguments"):
        load_episodes(episodes, {"chonk": 2}, "train")
    with pytest.raises(DataError, match="not a generation-accuracy eval set"):
        load_episodes(episodes, {}, "eval")
    with pytest.raises(DataError, match="data.loader_args"):
        load_dataset(tmp_path / "x.jsonl", loader_args={"chunk": 2})
    # a NaN action, a missing camera, a wrong step count: each names the episode file
    bad = make_episodes(tmp_path / "bad", steps=(3,), tasks=(0,))
    path = next((bad / "episodes").glob("*.npz"))
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["actions"][1, 2] = np.nan
    np.savez_compressed(path, **arrays)
    with pytest.raises(DataError, match=f"{path.name}.*finite"):
        load_episodes(bad, {}, "train")
    with pytest.raises(DataError, match=f"{path.name}.*images_wrist"):
        arrays["actions"][1, 2] = 0.0
        np.savez_compressed(path, **{k: v for k, v in arrays.items() if k != "images_wrist"})
        load_episodes(bad, {"cameras": ["wrist"]}, "train")
    np.savez_compressed(path, **{**arrays, "proprio": arrays["proprio"][:2]})
    with pytest.raises(DataError, match=f"{path.name}.*'proprio' has shape"):
        load_episodes(bad, {}, "train")
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=f"{path.name}: not a readable episode archive"):
        load_episodes(bad, {}, "train")


def test_in_memory_image_encodes_like_the_png(tiny_models, tmp_path):
    from PIL import Image

    from mmsft.models.loading import build_adapter, load_model

    adapter = build_adapter(load_model(str(tiny_models["vla"])))
    frame = np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(frame).save(tmp_path / "f.png")
    text = Part("text", text="What action should the robot take to go?")
    a = adapter.encode(Sample("a", [Message("user", (Part("image", array=frame), text))], actions=[[0.0] * 7]))
    b = adapter.encode(Sample("b", [Message("user", (Part("image", path=str(tmp_path / "f.png")), text))],
                              actions=[[0.0] * 7]))
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.mm["pixel_values"], b.mm["pixel_values"])
    with pytest.raises(DataError, match="H×W×3 uint8"):
        adapter.encode(Sample("c", [Message("user", (Part("image", array=frame[..., 0]), text))], actions=[[0.0] * 7]))


def _sft(model: Path, data: Path, out: Path, extra: list[str] = ()) -> Path:
    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    cfg = load_config(None, [f"model.name_or_path={model}", f"data.train_path={data}", f"train.output_dir={out}",
                             "train.max_steps=2", "train.micro_batch_size=4", "train.progress=false",
                             "train.tensorboard=false", "train.torch_threads=1", "optim.lr=1e-3",
                             "data.image_min_pixels=3136", "data.image_max_pixels=12544", *extra])
    return Trainer(cfg).train().final_model_dir


def test_statistics_fitted_on_demos_saved_and_checked(tiny_models, episodes, tmp_path):
    final = _sft(tiny_models["vla"], episodes, tmp_path / "run", ["data.loader_args={chunk: 2}"])
    saved = ActionTokenizer.load(final)
    actions = EpisodeSamples(episodes, EpisodeArgs(), "train")
    np.testing.assert_array_equal(saved.low, np.quantile(actions.actions().astype(np.float64), 0.01, axis=0))
    np.testing.assert_array_equal(saved.high, np.quantile(actions.actions().astype(np.float64), 0.99, axis=0))
    assert saved.num_fit_samples == sum(STEPS)
    assert saved.token_offset == ActionTokenizer.load(tiny_models["vla"]).token_offset
    interface = VLAInterface.of_model(saved, "saved")
    assert interface == VLAInterface(cameras=("agentview",), image_size=16, chunk=2, image_min_pixels=3136,
                                     image_max_pixels=12544)
    # continuing SFT keeps the fitted statistics (action_stats auto) and refuses a different interface
    again = _sft(final, episodes, tmp_path / "run2", ["data.loader_args={chunk: 2}"])
    assert ActionTokenizer.load(again) == saved
    with pytest.raises(DataError, match=r"chunk=3 \(recorded 2\)"):
        _sft(final, episodes, tmp_path / "run3", ["data.loader_args={chunk: 3}"])
    with pytest.raises(InterfaceError, match="trained with \\[3136, 12544\\]"):
        interface.resolve_budget(MediaBudget(image_min_pixels=784, image_max_pixels=50176), "here")


def test_a_qwen25_vl_becomes_a_vla(tiny_models, episodes, tmp_path):
    from mmsft.models.loading import load_model

    final = _sft(tiny_models["qwen2.5-vl"], episodes, tmp_path / "run")
    loaded = load_model(str(final))
    tok = loaded.action_tokenizer
    assert loaded.family == "vla" and tok.n_bins == 256
    assert tok.token_offset == len(loaded.processor.tokenizer) - 256  # no spare rows: the last 256 ids (OpenVLA)
    assert VLAInterface.of_model(tok, "x").chunk == 1


def test_openvla_dataset_statistics(tiny_models, episodes, tmp_path):
    import shutil

    from mmsft.models.loading import load_model

    folder = tmp_path / "openvla_style"
    shutil.copytree(tiny_models["qwen2.5-vl"], folder)
    q01, q99 = [-0.5] * 6 + [0.0], [0.5] * 6 + [1.0]
    stats = {"libero_spatial_no_noops": {"action": {"q01": q01, "q99": q99, "mask": [True] * 6 + [False]},
                                         "num_transitions": 1000}}
    (folder / "dataset_statistics.json").write_text(json.dumps(stats))
    loaded = load_model(str(folder))
    tok = loaded.action_tokenizer
    vocab = loaded.processor.tokenizer.vocab_size
    assert loaded.family == "vla" and tok.n_bins == 255 and tok.order == "descending"
    np.testing.assert_array_equal(tok.low, [-0.5] * 6 + [-1.0])  # the unmasked gripper is binned over [-1, 1]
    # OpenVLA's ids: normalise to [-1, 1], digitize into linspace(-1, 1, 256), id = vocab_size - bin
    action = np.array([[-0.5, -0.25, 0.0, 0.1, 0.3, 0.49, 0.7]])
    normed = np.where(np.array([True] * 6 + [False]), 2 * (action - np.array(q01)) / (np.array(q99) - q01) - 1,
                      action)
    openvla_ids = vocab - np.digitize(np.clip(normed, -1, 1), np.linspace(-1, 1, 256))
    np.testing.assert_array_equal(tok.encode(action), openvla_ids)
    # an OpenVLA-style folder trains on the same recipe, keeping its statistics (fitted on its own data)
    final = _sft(folder, episodes, tmp_path / "run")
    assert ActionTokenizer.load(final) == tok
