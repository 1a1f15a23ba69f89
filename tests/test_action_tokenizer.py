"""OpenVLA-style action tokenizer: golden round trip, clipping, save/load, compatibility, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmsft.models.action_tokenizer import ACTION_TOKENIZER_FILE, ActionTokenizer, ActionTokenizerMismatchError


def _fitted(seed: int = 0, vocab_size: int = 1000) -> tuple[ActionTokenizer, np.ndarray]:
    rng = np.random.default_rng(seed)
    actions = rng.normal(size=(2000, 3)) * np.array([1.0, 0.1, 5.0]) + np.array([0.0, 1.0, -2.0])
    return ActionTokenizer(vocab_size).fit(actions), actions


def test_golden_bins_and_ids() -> None:
    tok = ActionTokenizer.from_bounds(low=[-1.0, 0.0], high=[1.0, 4.0], vocab_size=300, n_bins=4)
    assert tok.token_offset == 296 and tok.action_token_ids.tolist() == [296, 297, 298, 299]
    actions = np.array([[-1.0, 0.0], [-0.5, 1.0], [0.49, 2.5], [1.0, 4.0]])
    assert tok.to_bins(actions).tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert tok.encode(actions).tolist() == [[296, 296], [297, 297], [298, 298], [299, 299]]
    np.testing.assert_allclose(tok.decode([[296, 299], [297, 298]]), [[-0.75, 3.5], [-0.25, 2.5]])


def test_round_trip_within_half_bin() -> None:
    tok, actions = _fitted()
    assert tok.action_dim == 3 and tok.n_bins == 256 and tok.token_offset == 1000 - 256
    np.testing.assert_allclose(tok.low, np.quantile(actions, 0.01, axis=0))
    np.testing.assert_allclose(tok.high, np.quantile(actions, 0.99, axis=0))
    inside = np.clip(actions, tok.low, tok.high)
    ids = tok.encode(inside)
    assert ids.shape == inside.shape and ids.dtype == np.int64
    assert ids.min() >= 1000 - 256 and ids.max() <= 999
    error = np.abs(tok.decode(ids) - inside)
    assert np.all(error <= tok.bin_width / 2 + 1e-12)
    # batch shape (..., action_dim) is kept
    assert tok.encode(inside.reshape(2, 1000, 3)).shape == (2, 1000, 3)


def test_out_of_range_is_clipped() -> None:
    tok = ActionTokenizer.from_bounds(low=[0.0], high=[1.0], vocab_size=512)
    ids = tok.encode([[-5.0], [7.0]])
    assert ids.tolist() == [[256], [511]]
    decoded = tok.decode(ids)
    np.testing.assert_allclose(decoded, [[0.5 / 256], [1 - 0.5 / 256]])


def test_constant_dimension() -> None:
    actions = np.stack([np.linspace(-1, 1, 50), np.full(50, 0.25)], axis=1)
    tok = ActionTokenizer(400).fit(actions)
    ids = tok.encode(actions)
    assert np.all(ids[:, 1] == tok.token_offset)
    np.testing.assert_allclose(tok.decode(ids)[:, 1], 0.25)


def test_save_load_round_trip(tmp_path: Path) -> None:
    tok, actions = _fitted()
    path = tok.save(tmp_path)
    assert path == tmp_path / ACTION_TOKENIZER_FILE
    data = json.loads(path.read_text())
    assert data["n_bins"] == 256 and data["action_dim"] == 3 and data["num_fit_samples"] == 2000
    for source in (tmp_path, path):
        loaded = ActionTokenizer.load(source)
        loaded.check_compatible(tok)
        assert loaded == tok
        np.testing.assert_array_equal(loaded.low, tok.low)
        np.testing.assert_array_equal(loaded.encode(actions), tok.encode(actions))


def test_mismatch_is_an_error() -> None:
    tok, _ = _fitted(seed=0)
    with pytest.raises(ActionTokenizerMismatchError, match="low differs in dimensions"):
        tok.check_compatible(_fitted(seed=1)[0])
    with pytest.raises(ActionTokenizerMismatchError, match="vocab_size: 1000 vs 2000"):
        tok.check_compatible(_fitted(seed=0, vocab_size=2000)[0])
    other = ActionTokenizer(1000, n_bins=128).fit(_fitted()[1])
    with pytest.raises(ActionTokenizerMismatchError, match="n_bins: 256 vs 128"):
        tok.check_compatible(other)
    assert tok != other


def test_bad_input_errors(tmp_path: Path) -> None:
    tok, _ = _fitted()
    with pytest.raises(ValueError, match="NaN or inf"):
        tok.encode([[0.0, np.nan, 0.0]])
    with pytest.raises(ValueError, match="expected last dimension 3"):
        tok.encode(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        ActionTokenizer(1000).fit(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="empty"):
        ActionTokenizer(1000).fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="not an action token"):
        tok.decode([[5, 800, 900]])
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        tok.decode([800, 900])
    with pytest.raises(RuntimeError, match="no normalisation statistics"):
        ActionTokenizer(1000).encode([[0.0]])
    with pytest.raises(ValueError, match="do not fit in a vocabulary"):
        ActionTokenizer(100, n_bins=256)
    with pytest.raises(FileNotFoundError, match=ACTION_TOKENIZER_FILE):
        ActionTokenizer.load(tmp_path)
    (tmp_path / ACTION_TOKENIZER_FILE).write_text(json.dumps({"n_bins": 256}))
    with pytest.raises(ValueError, match="missing key"):
        ActionTokenizer.load(tmp_path)
