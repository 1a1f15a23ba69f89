"""report.html for an SFT run, an RL run, a pipeline and a study-like folder: self-contained (every image a data: URI,
no external URL), its sections and numbers taken from the run, hostile model text escaped, the size budget kept, and
a report failure never losing a finished run. Also home of the helpers the tracker and model-card tests share."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from mmsft.config import load_config
from mmsft.rewards import register_reward

BASE = ["train.progress=false", "train.resume=never", "train.torch_threads=1", "optim.lr=1e-2", "optim.max_grad_norm=0"]


@register_reward("test_report_len")
def _length_reward(samples, completions, **_):
    """Test reward: shorter completions score higher (deterministic, varies within a group)."""
    return [1.0 / (1.0 + len(c)) for c in completions]


def sft_config(model: Path, data: Path, out: Path, *extra: str):
    return load_config(None, [f"model.name_or_path={model}", f"data.train_path={data}", f"train.output_dir={out}",
                              "train.micro_batch_size=2", "train.max_steps=3", *BASE, *extra])


def rl_config(model: Path, data: Path, out: Path, *extra: str):
    return load_config(None, ["algorithm=grpo", f"model.name_or_path={model}", f"data.train_path={data}",
                              f"train.output_dir={out}", "train.max_steps=2", "train.micro_batch_size=4",
                              "rl.prompts_per_step=2", "rl.group_size=2", "rl.max_new_tokens=4",
                              "rl.rewards=test_report_len", *BASE, *extra])


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


class PageCheck(HTMLParser):
    """Collects every tag's URL-bearing attributes, section ids and the visible text of a page."""

    URL_ATTRIBUTES = ("src", "href", "poster", "data", "action", "srcset", "background")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.append(value)
            if name in self.URL_ATTRIBUTES and value is not None:
                self.urls.append((tag, name, value))
            if name == "style" and value and "url(" in value:
                self.urls.append((tag, name, value))

    def handle_data(self, data):
        self.text.append(data)


def check_page(path: Path, max_bytes: int = 3 * 2**20) -> PageCheck:
    """Parse a report and assert it is self-contained: every image / video is a data: URI, every link an in-page
    anchor, no script or stylesheet is loaded from anywhere; returns the parsed page."""
    html = path.read_text(encoding="utf-8")
    assert len(html.encode()) < max_bytes, f"{path}: {len(html.encode())} bytes"
    page = PageCheck()
    page.feed(html)
    page.close()
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    for tag, attribute, value in page.urls:
        if tag in ("img", "video", "source"):
            assert value.startswith(("data:image/", "data:video/")), (tag, attribute, value[:80])
        elif tag == "a" and attribute == "href":
            assert value.startswith("#"), value
        else:
            raise AssertionError(f"unexpected URL attribute {tag}.{attribute}={value[:80]!r}")
    assert "http://" not in html and "https://" not in html
    return page


# ----------------------------------------------------------------------------------------------------------- runs
import base64  # noqa: E402
import io  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

from mmsft.cli import main  # noqa: E402
from mmsft.report import ReportOptions, build_report  # noqa: E402
from mmsft.report.collect import read_run  # noqa: E402
from mmsft.report.media import MediaBudget  # noqa: E402
from mmsft.report.samples import rollout_transcripts  # noqa: E402
from mmsft.report.tables import fmt  # noqa: E402
from mmsft.train.trainer import Trainer  # noqa: E402

COLOURS = {"img-0": (220, 30, 30), "img-1": (30, 200, 30), "img-2": (30, 30, 220), "img-3": (230, 230, 20)}


@pytest.fixture(scope="module")
def sft_run(tiny_models, text_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report-sft") / "run"
    Trainer(sft_config(tiny_models["text"], text_dataset, out, f"data.eval_path={text_dataset}", "eval.max_samples=4",
                       "eval.max_new_tokens=3", "train.tensorboard=false")).train()
    return out


@pytest.fixture(scope="module")
def rl_run(tiny_models, mm_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report-rl") / "run"
    Trainer(rl_config(tiny_models["qwen2.5-vl"], mm_dataset, out, "train.tensorboard=false")).train()
    return out


def _text(page: PageCheck) -> str:
    return " ".join(" ".join(page.text).split())


def test_sft_run_writes_a_self_contained_report(sft_run):
    page = check_page(sft_run / "report.html")  # written by Trainer.train itself
    assert {"summary", "curves", "samples", "config", "environment"} <= set(page.ids)
    text = _text(page)
    summary = json.loads((sft_run / "summary.json").read_text())
    assert summary["steps"] == 3 and "eval/accuracy" in summary
    for key in ("train/loss", "train/grad_norm", "eval/accuracy"):  # the summary table shows the run's numbers
        assert f"{key} {fmt(summary[key])}" in text, key
    assert "Say the word number 0." in text  # an SFT run shows training rows
    assert f"output_dir: {sft_run}" in text  # the resolved config
    import importlib.metadata

    assert f"version: torch {importlib.metadata.version('torch')}" in text  # the environment recorded at train start
    curves = [v for t, a, v in page.urls if t == "img" and v.startswith("data:image/png")]
    with Image.open(io.BytesIO(base64.b64decode(curves[0].split(",", 1)[1]))) as image:
        assert image.size[0] > 400 and np.asarray(image.convert("L")).std() > 5  # a drawn figure, not blank


def test_rl_report_shows_rollouts_with_their_prompt_images(rl_run):
    page = check_page(rl_run / "report.html")
    text = _text(page)
    run = read_run(rl_run)
    first = json.loads(run.rollout_files[0].read_text().splitlines()[0])
    assert " ".join(first["completion"].split()) in text and f"reward: {fmt(first['reward'])}" in text
    # the prompt image of each sampled rollout is looked up by sample id in the training data and embedded
    transcripts = rollout_transcripts(rl_run, run.rollout_files, run.config, MediaBudget(2**22, 2**20), 6)
    checked = 0
    for transcript in transcripts:
        sample = transcript.title.rsplit("sample ", 1)[-1]
        media = [m for turn in transcript.turns for m in turn.media]
        if sample in COLOURS:
            with Image.open(io.BytesIO(base64.b64decode(media[0].uri.split(",", 1)[1]))) as image:
                assert image.convert("RGB").getpixel((10, 10)) == COLOURS[sample]
            assert any(v == media[0].uri for _, _, v in page.urls)
            checked += 1
    assert checked >= 1
    assert "reward/total" in text and "rollouts" in text


@pytest.fixture(scope="module")
def pipeline_run(tiny_models, tmp_path_factory) -> Path:
    from mmsft.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("report-pipeline")
    paths = {}
    for word in ("red", "blue"):
        rows = [{"id": f"{word}{i}", "messages": [{"role": "user", "content": f"Question {i}: which colour?"},
                                                  {"role": "assistant", "content": word}], "answer": word}
                for i in range(4)]
        paths[word] = root / f"{word}.jsonl"
        paths[word].write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = {"output_dir": str(root / "run"),
           "defaults": {"model": {"name_or_path": str(tiny_models["text"])},
                        "train": {"torch_threads": 1, "progress": False, "tensorboard": False, "micro_batch_size": 4,
                                  "max_steps": 2},
                        "optim": {"lr": 1e-2}},
           "stages": [{"name": "red", "recipe": {"data": {"train_path": str(paths["red"])}},
                       "overrides": ["lora.enabled=true", "lora.r=4"]},
                      {"name": "blue", "recipe": {"data": {"train_path": str(paths["blue"])}}}],
           "evaluators": [{"name": w, "evaluator": "generation_accuracy", "path": str(paths[w]), "max_new_tokens": 2}
                          for w in ("red", "blue")]}
    return run_pipeline(doc, quiet=True).run_dir


def test_pipeline_report_has_the_matrix_and_every_stage(pipeline_run):
    page = check_page(pipeline_run / "report.html")
    assert {"summary", "matrix", "curves", "samples", "config", "environment"} <= set(page.ids)
    text = _text(page)
    matrix = json.loads((pipeline_run / "matrix.json").read_text())
    assert matrix["stages"] == ["base", "red", "blue"]
    for stage, row in zip(matrix["stages"], matrix["main"]):
        assert f"{stage} " + " ".join(f"{v:.4g}" for v in row) in text  # the matrix row, as the table shows it
    for stage in ("1-red", "2-blue"):
        assert (pipeline_run / "stages" / stage / "report.html").is_file()  # each stage's own report
        assert f"{stage} " in text
    assert "evaluation 1-red/red · predictions.jsonl" in text and "All runs" in text
    assert "stages:" in text  # pipeline.yaml under Config
    card = (pipeline_run / "stages" / "1-red" / "merged" / "README.md").read_text()  # the LoRA stage's merged model
    assert "LoRA adapter merged into its base weights" in card and "AutoModelForCausalLM" in card
    assert str(pipeline_run / "stages" / "1-red" / "merged") in card and "PeftModel" not in card


def _fake_run(root: Path, records: int = 3) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump({"stage": "rl", "data": {"train_path": ""}}))
    lines = [json.dumps({"step": s, "train/loss": 1.0 / s, "reward/total": 0.1 * s}) for s in range(1, records + 1)]
    (root / "metrics.jsonl").write_text("\n".join(lines) + "\n{\"step\": 4, \"train/lo")  # a line cut by a crash
    return root


def test_hostile_model_text_is_escaped_and_clipped(tmp_path):
    run = _fake_run(tmp_path / "run")
    (run / "rollouts").mkdir()
    hostile = "<script>alert(1)</script><img src=http://x.invalid/a.png onerror=alert(2)>"
    rows = [{"sample_id": "s0", "completion": hostile, "reward": 1.0},
            {"sample_id": "s1", "completion": "x" * 5_000_000 + "<b>", "reward": 0.0}]
    (run / "rollouts" / "batch-000000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = build_report(run).read_text(encoding="utf-8")
    page = PageCheck()
    page.feed(html)
    assert "script" not in page.tags and not any(v.startswith("http") for _, _, v in page.urls)
    assert hostile in " ".join(page.text)  # shown as text
    assert "more characters" in html and len(html) < 200_000  # the 5 MB completion was cut
    assert "1 unreadable line(s) skipped" in html


def _noise_gif(path: Path, frames: int, size: int, seed: int) -> None:
    """An incompressible GIF: random palette indices (palette images, so nothing is quantised)."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 255, 768, dtype=np.uint8).tolist()
    images = []
    for _ in range(frames):
        image = Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8), mode="P")
        image.putpalette(palette)
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], duration=50)


def test_media_stay_within_the_size_budget(tmp_path):
    run = _fake_run(tmp_path / "run")
    episodes = run / "rollouts" / "episodes"
    episodes.mkdir(parents=True)
    for i in range(9):
        _noise_gif(episodes / f"episode-{i}.gif", frames=12, size=112, seed=i)
    sizes = [p.stat().st_size for p in episodes.iterdir()]
    assert sum(sizes) > 2**20  # twice the budget below; each GIF over the per-item cap
    path = build_report(run, options=ReportOptions(max_mb=0.5))
    assert path.stat().st_size < 2**19
    page = check_page(path, max_bytes=2**19)
    gifs = [v for t, a, v in page.urls if v.startswith("data:image/gif")]
    assert 1 <= len(gifs) < 8
    text = " ".join(page.text)
    assert "more episode / media files not shown" in text
    assert "re-encoded" in text or "media budget" in text


def test_study_folder_compares_its_runs(sft_run, rl_run, tmp_path):
    study = tmp_path / "study"
    for name, source in (("a", sft_run), ("b", rl_run)):
        shutil.copytree(source, study / "runs" / name, ignore=shutil.ignore_patterns("final", "checkpoints"))
    (study / "study_results.json").write_text(json.dumps({"results": {"A": {"acc": 0.5}, "B": {"acc": 0.25}},
                                                          "args": {"seed": 0}}))
    (study / "study_results.md").write_text("| method | acc |\n| --- | --- |\n| A | 0.500 |\n| B | 0.250 |\n")
    page = check_page(build_report(study))
    text = _text(page)
    assert "study_results.json · results" in text and "A 0.5 B 0.25" in text and "A 0.500 B 0.250" in text
    assert "All runs" in text and "runs/a" in text and "runs/b" in text
    assert "seed: 0" in text  # the study's arguments under Config


def test_a_report_failure_never_loses_a_finished_run(tiny_models, text_dataset, tmp_path, monkeypatch, capsys):
    import mmsft.report

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mmsft.report, "build_report", broken)
    result = Trainer(sft_config(tiny_models["text"], text_dataset, tmp_path / "run", "train.max_steps=1",
                                "train.tensorboard=false")).train()
    assert (result.final_model_dir / "model.safetensors").is_file() and (tmp_path / "run" / "summary.json").is_file()
    assert not (tmp_path / "run" / "report.html").exists()
    assert "could not write the report" in capsys.readouterr().err


def test_report_command(sft_run, tmp_path, capsys):
    out = tmp_path / "small.html"
    assert main(["report", str(sft_run), "--out", str(out), "--max-mb", "0.5", "--samples", "1"]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    check_page(out, max_bytes=2**19)
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing: not a folder" in err


def test_agent_episodes_render_turn_by_turn_with_their_gif(tmp_path):
    from mmsft.rollout.agent import Episode, TurnRecord
    from mmsft.rollout.episode_log import write_episode_logs

    run = _fake_run(tmp_path / "run")
    frames = [np.full((32, 32, 3), (40 * i, 200, 30), np.uint8) for i in range(4)]
    episode = Episode(slot=0, group=0, seed=7, turns=[
        TurnRecord(1, "Board:\n#@ #\nYour move?", "<answer>Right</answer>", "ok", 0.0),
        TurnRecord(2, "Board:\n# @#\nYour move?", "<answer>Up</answer>", "invalid", -0.1)],
        episode_return=0.9, success=True, end="terminated", frames=frames)
    write_episode_logs(run / "rollouts", "env-000000", [episode], "sokoban", "return", 4, 2)
    page = check_page(build_report(run))
    text = _text(page)
    assert "Board: #@ # Your move?" in text and "<answer>Right</answer> [outcome: ok, reward: 0]" in text
    assert "outcome: invalid, reward: -0.1" in text and "success: True" in text and "end: terminated" in text
    gifs = [v for t, a, v in page.urls if v.startswith("data:image/gif")]
    with Image.open(io.BytesIO(base64.b64decode(gifs[0].split(",", 1)[1]))) as image:
        assert image.n_frames == 4
    assert "env-000000-ep0-success.gif" in text


def test_episode_videos_embed_or_become_gif_previews(tmp_path):
    pytest.importorskip("av")
    from tests.conftest import _write_mp4

    folder = tmp_path / "libero-eval"  # what `mmsft libero eval` leaves: results and episode videos
    video = folder / "videos" / "task0-ep0.mp4"
    _write_mp4(video, frames=8, size=64)
    (folder / "results.json").write_text(json.dumps({"success_rate": 0.5, "tasks": {"t0": {"success": 1.0, "n": 2}}}))
    page = check_page(build_report(folder))
    videos = [v for t, a, v in page.urls if t == "video"]
    assert len(videos) == 1 and base64.b64decode(videos[0].split(",", 1)[1]) == video.read_bytes()
    assert "results.json · tasks success n t0 1 2" in _text(page) and "success_rate 0.5" in _text(page)
    cap_mb = 0.9 * video.stat().st_size / (0.2 * 2**20)  # a per-item cap below the clip's size
    page = check_page(build_report(folder, tmp_path / "small.html", ReportOptions(max_mb=cap_mb)))
    gifs = [v for t, a, v in page.urls if v.startswith("data:image/gif")]
    assert not [v for t, a, v in page.urls if t == "video"] and len(gifs) == 1
    with Image.open(io.BytesIO(base64.b64decode(gifs[0].split(",", 1)[1]))) as image:
        assert image.n_frames == 8 and image.size == (64, 64)
    assert "GIF preview: 8 of 8 frames" in _text(page)


def test_relative_data_paths_resolve_where_training_ran(tmp_path, monkeypatch):
    workdir = tmp_path / "work"
    (workdir / "images").mkdir(parents=True)
    Image.new("RGB", (40, 40), (30, 30, 220)).save(workdir / "images" / "b.png")
    row = {"id": "q1", "messages": [{"role": "user", "content": [{"type": "image", "image": "images/b.png"},
                                                                  {"type": "text", "text": "Colour?"}]},
                                     {"role": "assistant", "content": "blue"}], "answer": "blue"}
    (workdir / "train.jsonl").write_text(json.dumps(row) + "\n")
    run = _fake_run(workdir / "runs" / "x")
    (run / "config.yaml").write_text(yaml.safe_dump({"stage": "sft", "data": {"train_path": "train.jsonl"}}))
    (run / "environment.json").write_text(json.dumps({"cwd": str(workdir), "versions": {"torch": "9.9"}}))
    monkeypatch.chdir(tmp_path)  # `mmsft report` run from elsewhere
    page = check_page(build_report(run))
    text = _text(page)
    assert "training sample q1" in text and "Colour?" in text and "answer: blue" in text
    assert "version: torch 9.9" in text and "No environment.json" not in text
    images = [v for t, a, v in page.urls if t == "img" and "png" in v[:30]]
    pixels = [Image.open(io.BytesIO(base64.b64decode(v.split(",", 1)[1]))).convert("RGB").getpixel((5, 5))
              for v in images]
    assert (30, 30, 220) in pixels
