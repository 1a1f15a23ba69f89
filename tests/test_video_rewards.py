"""VideoRFT rewards (tasks/video/rewards.py, semantic.py): golden values per problem type, format, length bonus, the
semantic-consistency reward on fixed embeddings, uint8 frames, the frame-embedding cache, hostile completions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mmsft.data.schema import Message, Part, Sample
from mmsft.data.shapes import write_mp4
from mmsft.rewards import compute_rewards
from tasks.video import plugin  # noqa: F401  (registers the rewards)
from tasks.video.answers import extract_answer, is_think_answer_format, parse_number
from tasks.video.rewards import length_bonus, mean_relative_accuracy, score_answer, videorft_length
from tasks.video.semantic import (SemanticScorer, SemanticSettings, reasoning_text, similarity_reward,
                                  wrap_like_reference)


def _row(problem_type: str, solution: str, sample_id: str = "s", media: str | None = None) -> Sample:
    parts = (Part("video", path=media),) if media else ()
    return Sample(sample_id, [Message("user", (*parts, Part("text", text="q")))], answer=extract_answer(solution),
                  meta={"problem_type": problem_type, "solution": solution})


def _tag(text: str) -> str:
    return f"<think>ok</think><answer>{text}</answer>"


@pytest.mark.parametrize("problem_type, truth, output, expected", [
    ("multiple choice", "A", "A", 1.0),
    ("multiple choice", "A", "a", 0.0),
    ("multiple choice", "A", "  A\n", 1.0),
    ("numerical", "3", "3.0", 0.0),  # one has a decimal point, the other not
    ("numerical", "3.14", "3.141", 1.0),  # round(x, 2)
    ("numerical", "3.14", "3.149", 0.0),
    ("numerical", "1,000", "1000", 0.0),
    ("numerical", "1,000", "1,000.0", 1.0),
    ("numerical", "7", "seven", 0.0),
    ("regression", "2.5", "2.0", 1 - 0.5 / 2.5),
    ("regression", "2.5", "10", 0.0),
    ("regression", "2.5", "nan", 0.0),  # the reference code gives NaN full marks
    ("OCR", "stop here now", "stop there now", 2 / 3),
    ("OCR", "stop here now", "", 0.0),
    ("OCR", "stop", "stop", 1.0),
    ("free-form", "the circle moves left", "the circle moved left", 1.0),  # Porter stems: moves, moved -> move
    ("free-form", "the circle moves left", "a square moves right", (0.25 + 0.0 + 0.25) / 3),
    ("free-form", "the circle moves left", "", 0.0),
])
def test_accuracy_golden_values(problem_type, truth, output, expected):
    value = compute_rewards(["videorft_accuracy"], None, [_row(problem_type, f"<answer>{truth}</answer>")],
                            [_tag(output)]).total[0]
    assert value == pytest.approx(expected, abs=1e-9)


def test_accuracy_reads_only_tagged_answers():
    sample = _row("multiple choice", "<answer>A</answer>")
    assert compute_rewards(["videorft_accuracy"], None, [sample], ["A"]).total == [0.0]  # no tags: ""
    assert score_answer("essay", "A", "A") == 0.0
    assert parse_number("１２") is None and parse_number("1_0") is None and parse_number("inf") is None
    assert parse_number(" -1,234.5 ") == -1234.5


def test_ground_truth_columns_and_fallbacks():
    plain = SimpleNamespace(id="x", answer="blue", meta={})
    # free-form by default: ROUGE-1 and -L are 1, a one-word answer has no bigrams (ROUGE-2 = 0)
    assert compute_rewards(["videorft_accuracy"], None, [plain], [_tag("blue")]).total == [pytest.approx(2 / 3)]
    columns = {"solution": ["<answer>B</answer>"], "problem_type": ["multiple choice"]}
    assert compute_rewards(["videorft_accuracy"], None, [plain], [_tag("B")], **columns).total == [1.0]


def test_format_reward():
    cases = {"<think>x</think>\n<answer>A</answer>": 1.0, "<think>x</think>A": 0.0,
             "x<think>a</think><answer>A</answer>": 0.0,
             "<think>a</think> \t<answer>A</answer>": 1.0, "<think>a</think>b<answer>A</answer>": 0.0}
    texts = list(cases)
    got = compute_rewards(["videorft_format"], None, [_row("OCR", "<answer>A</answer>")] * len(texts), texts).total
    assert got == list(cases.values())
    assert is_think_answer_format("<think></think><answer></answer>")


def test_length_bonus_rule():
    groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
    accuracies = [1.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.05, 0.0]
    lengths = [320, 600, 400, 512, 400, 400, 400, 400]
    assert length_bonus(accuracies, lengths, groups) == [0.2, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0]


def test_length_reward_uses_token_counts_and_groups():
    a, b = _row("multiple choice", "<answer>A</answer>", "a"), _row("multiple choice", "<answer>A</answer>", "b")
    texts = [_tag("A"), _tag("A"), _tag("B"), _tag("A")]
    samples = [a, a, b, b]
    values = videorft_length(samples, texts, completion_lengths=[400, 100, 400, 400])
    assert values == [0.2, 0.0, 0.0, 0.0]  # group b has one correct completion: no bonus


def test_mean_relative_accuracy():
    assert mean_relative_accuracy(9.0, 10.0) == pytest.approx(0.8)
    assert mean_relative_accuracy(10.0, 10.0) == 1.0
    assert mean_relative_accuracy(20.0, 10.0) == 0.0 and mean_relative_accuracy(None, 10.0) == 0.0


# ---------------------------------------------------------------------------------------------- semantic reward
def test_semantic_formula_on_fixed_embeddings():
    frames = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])
    text = np.array([0.28, 0.96])
    # sims 0.28, 0.936, -0.28 -> min(1, 2 max(s, 0)) = 0.56, 1.0, 0.0
    assert similarity_reward(frames, text) == pytest.approx((0.56 + 1.0 + 0.0) / 3)


def test_reasoning_text_drops_the_first_sentence():
    assert reasoning_text("<think>I read the question. The red circle moves.</think><answer>A</answer>") == \
        "The red circle moves."
    assert reasoning_text("no think. but text") == "but text"
    assert reasoning_text("<think>no full stop</think>") == "no full stop"


def test_reference_frame_bug_wraps_colours():
    frames = np.array([[[[200, 100, 100]]]], dtype=np.uint8)
    assert wrap_like_reference(frames).tolist() == [[[[56, 156, 156]]]]


class _Spy:
    """A fixed dual encoder that records what reaches it."""

    def __init__(self) -> None:
        self.frame_calls: list[np.ndarray] = []
        self.texts: list[str] = []

    def embed_text(self, texts):
        self.texts.extend(texts)
        return np.tile([0.6, 0.8], (len(texts), 1))

    def embed_frames(self, frames):
        self.frame_calls.append(frames)
        return np.tile([1.0, 0.0], (len(frames), 1))


@pytest.fixture()
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    pixels = np.zeros((4, 28, 28, 3), dtype=np.uint8)
    pixels[..., 0] = 200
    pixels[..., 1:] = 100
    write_mp4(path, pixels)
    return str(path)


@pytest.mark.parametrize("bug", [False, True])
def test_semantic_reward_gates_caches_and_passes_uint8(clip, bug):
    spy = _Spy()
    scorer = SemanticScorer(SemanticSettings(replicate_frame_bug=bug), spy)
    group = 4
    samples = [_row("multiple choice", "<answer>A</answer>", "v", clip)] * group
    texts = [_tag("A"), _tag("B"), _tag("A"), _tag("A")]
    values = scorer.score(samples, texts, [1.0, 0.0, 1.0, 1.0])
    assert values == pytest.approx([1.0, 0.0, 1.0, 1.0])  # cos 0.6 -> min(1, 1.2); the wrong one is gated to 0
    assert len(spy.frame_calls) == 1 and spy.frame_calls[0].dtype == np.uint8
    assert spy.frame_calls[0].shape[0] == 4  # every frame of the 4-frame clip (16 requested, 4 exist)
    assert scorer.stats.misses == 1 and scorer.stats.hits == 3 - 1  # 3 completions pass the gate: G' - 1 hits
    red = spy.frame_calls[0][..., 0].mean()
    assert (red < 100) if bug else (red > 150)  # 200 wraps to 56 under the reference bug
    scorer.score(samples, texts, [1.0] * group)
    assert scorer.stats.misses == 1 and scorer.stats.hits == 2 + group  # the next group is all hits


def test_cache_hit_g_minus_one_per_group(clip):
    spy = _Spy()
    scorer = SemanticScorer(SemanticSettings(), spy)
    group = 8
    scorer.score([_row("OCR", "<answer>x</answer>", "v", clip)] * group, [_tag("x")] * group, [1.0] * group)
    assert (scorer.stats.misses, scorer.stats.hits) == (1, group - 1)


def test_semantic_reward_without_media_is_zero():
    spy = _Spy()
    scorer = SemanticScorer(SemanticSettings(), spy)
    assert scorer.score([SimpleNamespace(id="x", meta={})], ["<answer>a</answer>"], [1.0]) == [0.0]
    assert not spy.frame_calls


def test_embedded_siglip_gets_uint8_and_prefers_the_true_description(clip, monkeypatch):
    from tasks.video.semantic import DEFAULT_ENCODER, SiglipEncoder
    from tasks.video.world import Clip, Mover

    encoder = SiglipEncoder(DEFAULT_ENCODER)
    seen = []
    original = type(encoder.image_processor).__call__

    def spy(self, images=None, **kwargs):
        seen.extend(np.asarray(i).dtype for i in images)
        return original(self, images=images, **kwargs)

    monkeypatch.setattr(type(encoder.image_processor), "__call__", spy)
    movie = Clip((Mover("red", "circle", 12.0, 30.0, "right", "fast", 1),
                  Mover("blue", "square", 40.0, 40.0, "still", "slowly", 1)))
    frames = encoder.embed_frames(movie.frames())
    assert seen and all(d == np.uint8 for d in seen)
    own, other = encoder.embed_text([" ".join(movie.description()),
                                     "The video shows a green star and a yellow triangle. The green star stays still."])
    assert similarity_reward(frames, own) > similarity_reward(frames, other)


# ---------------------------------------------------------------------------------------------- hostile completions
@pytest.mark.parametrize("problem_type", ["multiple choice", "numerical", "OCR", "free-form", "regression"])
def test_rewards_are_total_and_fast_on_hostile_completions(problem_type, clip):
    from tests.test_hostile_outputs import INPUTS, _run_all
    from tasks.video import semantic

    semantic.configure(None)  # the embedded tiny SigLIP, on real frames whenever a completion passes the gate
    truths = {"multiple choice": "A", "numerical": "1,2", "OCR": "answer formula up", "free-form": "answer the 1",
              "regression": "12"}
    sample = _row(problem_type, f"<answer>{truths[problem_type]}</answer>", "h", clip)
    names = ["videorft_accuracy", "videorft_format", "videorft_length", "videorft_semantic"]
    warm = compute_rewards(names, None, [sample], [_tag(truths[problem_type])])  # loads the encoder (once per process)
    assert warm.parts["videorft_semantic"][0] > 0

    def check(text):
        result = compute_rewards(names, None, [sample, sample], [text, text], completion_lengths=[400, 400])
        assert all(np.isfinite(result.total)) and len(result.total) == 2

    _run_all(check)
    assert semantic.current_scorer().stats.misses <= 1


def test_tiny_siglip_build_is_deterministic(tmp_path):
    from tasks.video.siglip_tiny import build_tiny_siglip

    first = build_tiny_siglip(tmp_path / "a", steps=3, batch_size=4, eval_clips=4)
    second = build_tiny_siglip(tmp_path / "b", steps=3, batch_size=4, eval_clips=4)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert first["final_loss"] == second["final_loss"] and 0 <= first["retrieval_top1"] <= 1


def test_shipped_tiny_siglip_report():
    import json

    from tasks.video.semantic import DEFAULT_ENCODER

    report = json.loads((DEFAULT_ENCODER / "build_report.json").read_text())
    assert report["retrieval_top1"] >= 0.5 and report["reward_own_description"] > report["reward_other_description"]
    assert sum(f.stat().st_size for f in DEFAULT_ENCODER.iterdir()) < 3 * 2**20
