"""Discretise continuous robot actions into vocabulary tokens, OpenVLA-style.

OpenVLA (Kim et al., 2024, "OpenVLA: An Open-Source Vision-Language-Action Model", arXiv:2406.09246) turns a
VLM into a policy by writing each action dimension as one token: the dimension's range, taken between the 1st
and 99th percentile of the training actions (robust to outliers), is cut into 256 uniform bins, and the bins
overwrite the 256 least used (last) ids of the language model's vocabulary. The model is then trained with the
ordinary next-token loss and decoded back to continuous actions through the bin centres.

:class:`ActionTokenizer` implements that scheme with configurable bin count and quantiles. Differences from the
OpenVLA code, all deliberate:

* bin ``i`` of every dimension maps to token id ``token_offset + i`` (ascending; OpenVLA counts down from the end);
* the bins are exactly ``n_bins`` equal intervals of ``[low, high]`` and decoding returns their centres, so any
  in-range action round-trips within half a bin width; actions outside the range are clipped to it;
* the normalisation statistics (``low``/``high`` per dimension, bin count, token ids) are saved next to the model
  as ``action_tokenizer.json`` and must match between teacher and student (:meth:`ActionTokenizer.check_compatible`).

``order="descending"`` with ``n_bins=255`` reproduces OpenVLA's ids exactly (bin ``b`` is id
``vocab_size - 1 - b``); :meth:`ActionTokenizer.from_dataset_statistics` reads an OpenVLA ``dataset_statistics.json``
that way. The saved file may also carry an ``interface`` mapping: how the policy's observations were turned into
prompts during training (prompt template, cameras, image size, pixel budget, action chunk; written by the trainer's
data loader), so every later use of the model folder builds the same prompts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ACTION_TOKENIZER_FILE = "action_tokenizer.json"
"""File name of the saved statistics inside a model folder."""
DATASET_STATISTICS_FILE = "dataset_statistics.json"
"""OpenVLA's per-dataset statistics file (``{unnorm_key: {"action": {"q01", "q99", "mask", ...}}}``)."""
ORDERS = ("ascending", "descending")

_FORMAT = "mmsft.action_tokenizer"
_VERSION = 1


class ActionTokenizerMismatchError(ValueError):
    """Two action tokenizers (e.g. teacher and student) use different statistics or token ids."""


class ActionTokenizer:
    """Per-dimension uniform binning of actions onto reserved vocabulary ids (OpenVLA, arXiv:2406.09246).

    Args:
        vocab_size: size of the model's vocabulary (``config.vocab_size`` / ``len(tokenizer)``).
        n_bins: number of bins per action dimension (OpenVLA: 256).
        low_quantile, high_quantile: quantiles of the dataset's actions that bound the binned range (used by
            :meth:`fit`; OpenVLA: 0.01 and 0.99).
        token_offset: lowest action token id; defaults to ``vocab_size - n_bins`` (the last ``n_bins`` ids).
        order: ``ascending`` (bin ``i`` is id ``token_offset + i``) or ``descending`` (OpenVLA: bin ``i`` is id
            ``token_offset + n_bins - 1 - i``).

    The tokenizer is unusable until it has statistics: call :meth:`fit` on the dataset's actions, or build it
    with :meth:`from_bounds`, or :meth:`load` it from a model folder.
    """

    def __init__(
        self,
        vocab_size: int,
        n_bins: int = 256,
        low_quantile: float = 0.01,
        high_quantile: float = 0.99,
        token_offset: int | None = None,
        order: str = "ascending",
    ) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if n_bins < 2:
            raise ValueError(f"n_bins must be at least 2, got {n_bins}")
        if not 0.0 <= low_quantile < high_quantile <= 1.0:
            raise ValueError(
                f"expected 0 <= low_quantile < high_quantile <= 1, got low_quantile={low_quantile}, "
                f"high_quantile={high_quantile}"
            )
        offset = vocab_size - n_bins if token_offset is None else int(token_offset)
        if offset < 0 or offset + n_bins > vocab_size:
            raise ValueError(
                f"action token ids [{offset}, {offset + n_bins}) do not fit in a vocabulary of {vocab_size} ids"
            )
        self.vocab_size = int(vocab_size)
        self.n_bins = int(n_bins)
        self.low_quantile = float(low_quantile)
        self.high_quantile = float(high_quantile)
        self.token_offset = offset
        self.order = order
        self.interface: dict[str, Any] = {}
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None
        self.num_fit_samples = 0

    # ------------------------------------------------------------------ statistics
    @classmethod
    def from_bounds(
        cls,
        low: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        vocab_size: int,
        n_bins: int = 256,
        token_offset: int | None = None,
    ) -> "ActionTokenizer":
        """An action tokenizer over fixed per-dimension bounds ``[low, high]`` (no data needed)."""
        tokenizer = cls(vocab_size, n_bins=n_bins, token_offset=token_offset)
        tokenizer._set_bounds(np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64), 0)
        return tokenizer

    def fit(self, actions: np.ndarray) -> "ActionTokenizer":
        """Set each dimension's range to the (``low_quantile``, ``high_quantile``) quantiles of ``actions``.

        Args:
            actions: array of shape ``(N, action_dim)`` (or ``(..., action_dim)``, flattened), finite values.

        Returns:
            ``self``.
        """
        array = self._as_actions(actions, "actions passed to fit", check_dim=False)
        flat = array.reshape(-1, array.shape[-1])
        if flat.shape[0] == 0:
            raise ValueError("fit: got an empty actions array; expected at least one action of shape (action_dim,)")
        low = np.quantile(flat, self.low_quantile, axis=0)
        high = np.quantile(flat, self.high_quantile, axis=0)
        self._set_bounds(low.astype(np.float64), high.astype(np.float64), flat.shape[0])
        return self

    def _set_bounds(self, low: np.ndarray, high: np.ndarray, num_samples: int) -> None:
        if low.ndim != 1 or low.shape != high.shape or low.size == 0:
            raise ValueError(
                f"low and high must be 1-D arrays of equal non-zero length, got shapes {low.shape} and {high.shape}"
            )
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"action bounds must be finite, got low={low.tolist()} high={high.tolist()}")
        if np.any(high < low):
            bad = np.nonzero(high < low)[0].tolist()
            raise ValueError(f"action bounds have high < low in dimensions {bad}")
        self.low, self.high, self.num_fit_samples = low.copy(), high.copy(), int(num_samples)

    @property
    def is_fitted(self) -> bool:
        """Whether normalisation statistics are set."""
        return self.low is not None

    @property
    def action_dim(self) -> int:
        """Number of action dimensions (tokens per action)."""
        return int(self._bounds()[0].shape[0])

    @property
    def bin_width(self) -> np.ndarray:
        """Width of one bin per dimension, ``(high - low) / n_bins`` (0 for a constant dimension)."""
        low, high = self._bounds()
        return (high - low) / self.n_bins

    @property
    def bin_centers(self) -> np.ndarray:
        """``(n_bins, action_dim)`` array of the values :meth:`decode` returns."""
        low, _ = self._bounds()
        return low[None, :] + (np.arange(self.n_bins)[:, None] + 0.5) * self.bin_width[None, :]

    @property
    def action_token_ids(self) -> np.ndarray:
        """The restricted action vocabulary: ids of bins ``0 .. n_bins-1`` (int64), e.g. for restricted log-probs."""
        return np.arange(self.token_offset, self.token_offset + self.n_bins, dtype=np.int64)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self.low is None or self.high is None:
            raise RuntimeError(
                "ActionTokenizer has no normalisation statistics: call fit(actions), from_bounds(...) or load(dir)"
            )
        return self.low, self.high

    # ------------------------------------------------------------------ encode / decode
    def _as_actions(self, actions: Any, what: str, check_dim: bool = True) -> np.ndarray:
        array = np.asarray(actions, dtype=np.float64)
        if array.ndim == 0:
            raise ValueError(f"{what}: expected shape (..., action_dim), got a scalar")
        if check_dim and array.shape[-1] != self.action_dim:
            raise ValueError(f"{what}: expected last dimension {self.action_dim} (action_dim), got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            where = np.argwhere(~np.isfinite(array))[0].tolist()
            raise ValueError(f"{what}: contains NaN or inf (first at index {where})")
        return array

    def to_bins(self, actions: np.ndarray) -> np.ndarray:
        """Bin indices in ``[0, n_bins)`` of ``actions`` (``(..., action_dim)``), clipping out-of-range values."""
        low, high = self._bounds()
        array = self._as_actions(actions, "actions to encode")
        width = high - low
        safe = np.where(width > 0, width, 1.0)
        scaled = (np.clip(array, low, high) - low) / safe * self.n_bins
        bins = np.floor(scaled).astype(np.int64)
        bins = np.where(width > 0, bins, 0)
        return np.clip(bins, 0, self.n_bins - 1)

    def bin_to_index(self, bins: Any) -> np.ndarray:
        """Position in :attr:`action_token_ids` (the restricted vocabulary) of each bin index (and back: the map is
        its own inverse)."""
        bins = np.asarray(bins, dtype=np.int64)
        return bins if self.order == "ascending" else self.n_bins - 1 - bins

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Token ids (int64, same shape as ``actions``) of the bins of ``actions`` ``(..., action_dim)``.

        Values outside ``[low, high]`` are clipped into the first / last bin.
        """
        return self.bin_to_index(self.to_bins(actions)) + self.token_offset

    def decode(self, token_ids: Any) -> np.ndarray:
        """Actions (float64, bin centres) for ``token_ids`` of shape ``(..., action_dim)``.

        Raises ``ValueError`` when an id is not an action token (outside :attr:`action_token_ids`).
        """
        low, _ = self._bounds()
        ids = np.asarray(token_ids)
        if ids.ndim == 0 or ids.shape[-1] != self.action_dim:
            raise ValueError(f"decode: expected token ids of shape (..., {self.action_dim}), got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"decode: expected integer token ids, got dtype {ids.dtype}")
        index = ids.astype(np.int64) - self.token_offset
        bad = (index < 0) | (index >= self.n_bins)
        if np.any(bad):
            where = np.argwhere(bad)[0].tolist()
            raise ValueError(
                f"decode: token id {int(ids[tuple(where)])} at index {where} is not an action token; expected ids in "
                f"[{self.token_offset}, {self.token_offset + self.n_bins})"
            )
        return low + (self.bin_to_index(index) + 0.5) * self.bin_width

    def round_trip(self, actions: np.ndarray) -> np.ndarray:
        """``decode(encode(actions))``: the actions as the model can express them."""
        return self.decode(self.encode(actions))

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (float64 values round-trip exactly through ``json``)."""
        low, high = self._bounds()
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "vocab_size": self.vocab_size,
            "n_bins": self.n_bins,
            "token_offset": self.token_offset,
            "low_quantile": self.low_quantile,
            "high_quantile": self.high_quantile,
            "order": self.order,
            "action_dim": int(low.shape[0]),
            "low": [float(v) for v in low],
            "high": [float(v) for v in high],
            "num_fit_samples": self.num_fit_samples,
            "interface": dict(self.interface),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "ActionTokenizer":
        """Inverse of :meth:`to_dict`; ``source`` names the file in error messages."""
        required = (
            "vocab_size", "n_bins", "token_offset", "low_quantile", "high_quantile", "action_dim", "low", "high"
        )
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(
                f"{source}: missing key(s) {missing}; expected an {ACTION_TOKENIZER_FILE} written by save()"
            )
        if data.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"{source}: 'format' is {data.get('format')!r}, expected {_FORMAT!r}")
        tokenizer = cls(
            int(data["vocab_size"]),
            n_bins=int(data["n_bins"]),
            low_quantile=float(data["low_quantile"]),
            high_quantile=float(data["high_quantile"]),
            token_offset=int(data["token_offset"]),
            order=str(data.get("order", "ascending")),
        )
        interface = data.get("interface", {})
        if not isinstance(interface, dict):
            raise ValueError(f"{source}: 'interface' must be a mapping, got {type(interface).__name__}")
        tokenizer.interface = dict(interface)
        low = np.asarray(data["low"], dtype=np.float64)
        high = np.asarray(data["high"], dtype=np.float64)
        if low.shape != (int(data["action_dim"]),):
            raise ValueError(f"{source}: 'low' has {low.size} values but 'action_dim' is {data['action_dim']}")
        try:
            tokenizer._set_bounds(low, high, int(data.get("num_fit_samples", 0)))
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
        return tokenizer

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``directory/action_tokenizer.json`` (creating ``directory``) and return its path."""
        path = Path(directory) / ACTION_TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ActionTokenizer":
        """Load from a model folder holding ``action_tokenizer.json``, or from the JSON file itself."""
        path = Path(path)
        file = path / ACTION_TOKENIZER_FILE if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(
                f"no action tokenizer at {file}: expected {ACTION_TOKENIZER_FILE} in the model folder "
                "(build it with ActionTokenizer.fit(actions).save(model_dir))"
            )
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{file}: not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{file}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source=str(file))

    # ------------------------------------------------------------------ compatibility
    def check_compatible(self, other: "ActionTokenizer") -> None:
        """Raise :class:`ActionTokenizerMismatchError` unless ``other`` bins actions onto the same token ids.

        Teacher and student (or a checkpoint and the dataset it is evaluated on) must share the bin count, token
        ids and normalisation statistics, otherwise the same token means different actions.
        """
        mine, theirs = self.to_dict(), other.to_dict()
        differences = []
        for key in ("vocab_size", "n_bins", "token_offset", "order", "action_dim", "low_quantile", "high_quantile"):
            if mine[key] != theirs[key]:
                differences.append(f"{key}: {mine[key]} vs {theirs[key]}")
        if mine["action_dim"] == theirs["action_dim"]:
            for key in ("low", "high"):
                a, b = np.asarray(mine[key]), np.asarray(theirs[key])
                if not np.array_equal(a, b):
                    dims = np.nonzero(a != b)[0].tolist()
                    differences.append(f"{key} differs in dimensions {dims} (max abs diff {np.max(np.abs(a - b)):.3g})")
        if differences:
            raise ActionTokenizerMismatchError(
                "action tokenizers are not compatible (teacher and student must share the normalisation statistics "
                "in action_tokenizer.json): " + "; ".join(differences)
            )

    # ------------------------------------------------------------------ other sources of statistics
    @classmethod
    def from_dataset_statistics(cls, path: str | os.PathLike[str], vocab_size: int, unnorm_key: str | None = None
                                ) -> "ActionTokenizer":
        """OpenVLA's tokenizer from its ``dataset_statistics.json`` (Kim et al., arXiv 2406.09246, the
        ``unnorm_key`` entry): 255 uniform bins between q01 and q99 per dimension, ids counting down from
        ``vocab_size - 1`` (``vocab_size`` = the base tokenizer's size, OpenVLA's ``tokenizer.vocab_size``).
        Dimensions whose ``mask`` is false (the gripper) are not normalised by OpenVLA; they are binned over
        [-1, 1]. With several datasets in the file, ``unnorm_key`` must name one."""
        file = Path(path)
        file = file / DATASET_STATISTICS_FILE if file.is_dir() else file
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{file}: cannot read OpenVLA dataset statistics ({error})") from None
        if not isinstance(data, dict) or not data:
            raise ValueError(f"{file}: expected a mapping {{unnorm_key: {{'action': {{'q01': [...], 'q99': [...]}}}}}}")
        if unnorm_key is None:
            if len(data) != 1:
                raise ValueError(f"{file} holds statistics of {len(data)} datasets {sorted(data)[:8]}; choose one "
                                 "with ActionTokenizer.from_dataset_statistics(path, vocab_size, unnorm_key=...) and "
                                 f"save it as {ACTION_TOKENIZER_FILE} in the model folder")
            unnorm_key = next(iter(data))
        entry = data.get(unnorm_key)
        action = entry.get("action") if isinstance(entry, dict) else None
        if not isinstance(action, dict) or "q01" not in action or "q99" not in action:
            raise ValueError(f"{file}: entry {unnorm_key!r} has no 'action' statistics with 'q01' and 'q99'")
        low = np.asarray(action["q01"], dtype=np.float64)
        high = np.asarray(action["q99"], dtype=np.float64)
        mask = np.asarray(action.get("mask", [True] * low.size), dtype=bool)
        if mask.shape != low.shape:
            raise ValueError(f"{file}: entry {unnorm_key!r} has {mask.size} mask values for {low.size} dimensions")
        low, high = np.where(mask, low, -1.0), np.where(mask, high, 1.0)
        tokenizer = cls(vocab_size, n_bins=255, order="descending")
        try:
            tokenizer._set_bounds(low, high, int(entry.get("num_transitions", 0) or 0))
        except ValueError as error:
            raise ValueError(f"{file} ({unnorm_key!r}): {error}") from None
        tokenizer.interface = {"source": f"{DATASET_STATISTICS_FILE}:{unnorm_key}"}
        return tokenizer

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActionTokenizer):
            return NotImplemented
        if not (self.is_fitted and other.is_fitted):
            return self is other
        try:
            self.check_compatible(other)
        except ActionTokenizerMismatchError:
            return False
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable (fit), so not hashable

    def __repr__(self) -> str:
        dim = self.action_dim if self.is_fitted else "unfitted"
        return (
            f"ActionTokenizer(action_dim={dim}, n_bins={self.n_bins}, token_ids=[{self.token_offset}, "
            f"{self.token_offset + self.n_bins}) {self.order}, quantiles=({self.low_quantile}, {self.high_quantile}))"
        )


def default_token_offset(embedding_rows: int, tokenizer: Any, n_bins: int) -> int:
    """Where a fresh action vocabulary goes in a model that has none: the embedding rows past the tokenizer's
    vocabulary when there are ``n_bins`` of them (Qwen2.5-VL pads its 151,665 tokens to 151,936 rows), else the
    tokenizer's last ``n_bins`` ids (OpenVLA's choice: the least-used tokens), which must not hold a special token."""
    size = len(tokenizer)
    if embedding_rows - size >= n_bins:
        return embedding_rows - n_bins
    offset = min(size, embedding_rows) - n_bins
    if offset < 0:
        raise ValueError(f"a vocabulary of {min(size, embedding_rows)} ids cannot hold {n_bins} action bins")
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= set((getattr(tokenizer, "get_added_vocab", dict)() or {}).values())
    clash = sorted(i for i in special if offset <= i < offset + n_bins)
    if clash:
        raise ValueError(f"the last {n_bins} token ids [{offset}, {offset + n_bins}) include special/added tokens "
                         f"{clash[:5]}; use a model whose embedding has {n_bins} spare rows, or fewer bins")
    return offset


def load_model_action_tokenizer(folder: str | os.PathLike[str], model: Any, processor: Any) -> "ActionTokenizer | None":
    """A model folder's action tokenizer: ``action_tokenizer.json``, else OpenVLA's ``dataset_statistics.json``,
    else None (a VL model that becomes a VLA by fitting statistics on demonstrations). The action ids must exist in
    the model's embedding."""
    folder = Path(folder)
    tokenizer = getattr(processor, "tokenizer", processor)
    if (folder / ACTION_TOKENIZER_FILE).is_file():
        action_tokenizer = ActionTokenizer.load(folder)
    elif (folder / DATASET_STATISTICS_FILE).is_file():
        base = int(getattr(tokenizer, "vocab_size", 0) or len(tokenizer))
        action_tokenizer = ActionTokenizer.from_dataset_statistics(folder, base)
    else:
        return None
    rows = int(model.get_input_embeddings().num_embeddings)
    if action_tokenizer.token_offset + action_tokenizer.n_bins > rows:
        raise ValueError(f"{folder}: action token ids [{action_tokenizer.token_offset}, "
                         f"{action_tokenizer.token_offset + action_tokenizer.n_bins}) do not exist in the model's "
                         f"embedding of {rows} rows")
    return action_tokenizer


__all__ = ["ACTION_TOKENIZER_FILE", "DATASET_STATISTICS_FILE", "ActionTokenizer", "ActionTokenizerMismatchError",
           "default_token_offset", "load_model_action_tokenizer"]
