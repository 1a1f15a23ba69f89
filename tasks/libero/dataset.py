"""An episode folder (``mmsft data collect-libero``) read directly as VLA training data: loader ``libero_episodes``.

:class:`EpisodeSamples` is a lazy dataset view over the ``.npz`` episodes — nothing is copied into JSONL and no
image is written to disk. Step ``t`` of an episode becomes one :class:`~mmsft.data.schema.Sample`: the prompt of
observation ``t`` (:class:`~tasks.libero.prompt.VLAInterface`: the camera image(s) in memory, the instruction,
optionally the proprio state) and, as target, the next ``chunk`` recorded actions ``a_t … a_{t+K-1}`` (action
chunking, OFT arXiv 2502.19645; ``chunk: 1`` is OpenVLA). Near the end of an episode the last action is repeated to
fill the chunk (counted in :attr:`EpisodeSamples.padded_targets`).

Train / validation split by episode: with ``val_episodes: n`` the last ``n`` episodes of every task (by init state)
are the validation split; the trainer's training set is ``split: train`` (default for ``data.train_path``).

:meth:`EpisodeSamples.configure_model` runs before the trainer builds the adapter: it fits the action tokenizer's
per-dimension q01/q99 bin statistics on the training episodes' actions (``action_stats: auto`` fits when the model
has no statistics fitted on data — a fresh VLA, or a VL model that becomes one; ``fit`` always; ``model`` keeps the
model's and reports how many recorded actions fall outside them), and records the interface (prompt, cameras, image
size, chunk, pixel budget) in the model's ``action_tokenizer.json``, so inference builds the training prompt.

A bad episode (missing key, wrong shape or dtype, non-finite action, step count that contradicts ``index.jsonl``)
is an error naming the file.

``collect: {suite, tasks, episodes_per_task, init_offset, workers, image_size, render}`` records the folder with the
scripted oracle first when it does not exist yet (successful episodes only, the loader's ``cameras``), so a
pipeline goes from nothing to a trained VLA in one file; this needs the ``[libero]`` extra and a single process.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from mmsft.data.loaders import DATASET_LOADERS
from mmsft.data.schema import DataError, Sample
from tasks.libero.episodes import read_index
from tasks.libero.prompt import CAMERAS, InterfaceError, VLAInterface

EPISODE_FORMAT = "mmsft-libero-episodes-v1"
_CACHE_EPISODES = 32
_COLLECT_KEYS = ("suite", "tasks", "episodes_per_task", "init_offset", "workers", "image_size", "render")


@dataclass
class EpisodeArgs:
    """``data.loader_args`` of ``libero_episodes``."""

    chunk: int = 1
    cameras: list = field(default_factory=lambda: ["agentview"])
    proprio: bool = False
    successes_only: bool = True
    tasks: list = field(default_factory=list)  # empty: every task in the folder
    val_episodes: int = 0
    split: str = "auto"  # auto: train for data.train_path, val for data.eval_path; or train / val / all
    action_stats: str = "auto"  # auto | fit | model
    n_bins: int = 256  # bins of a new action tokenizer (a model that has none)
    collect: dict = field(default_factory=dict)  # record the folder with the oracle first when it is missing

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> "EpisodeArgs":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise DataError(f"data.loader_args {unknown} are not arguments of loader 'libero_episodes'; valid: "
                            f"{sorted(known)}")
        args = cls(**raw)
        if isinstance(args.cameras, str):
            args.cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
        checks = [(isinstance(args.chunk, int) and args.chunk >= 1, "chunk", "an integer >= 1"),
                  (isinstance(args.cameras, list) and args.cameras and all(c in CAMERAS for c in args.cameras),
                   "cameras", f"a non-empty list from {CAMERAS}"),
                  (isinstance(args.val_episodes, int) and args.val_episodes >= 0, "val_episodes", "an integer >= 0"),
                  (args.split in ("auto", "train", "val", "all"), "split", "auto, train, val or all"),
                  (args.action_stats in ("auto", "fit", "model"), "action_stats", "auto, fit or model"),
                  (isinstance(args.n_bins, int) and args.n_bins >= 2, "n_bins", "an integer >= 2"),
                  (isinstance(args.tasks, list) and all(isinstance(t, int) for t in args.tasks), "tasks",
                   "a list of task ids"),
                  (isinstance(args.collect, dict) and set(args.collect) <= set(_COLLECT_KEYS), "collect",
                   f"a mapping with keys from {list(_COLLECT_KEYS)}")]
        for ok, key, expected in checks:
            if not ok:
                raise DataError(f"data.loader_args.{key}={getattr(args, key)!r}: expected {expected}")
        return args


def is_episode_folder(path: Path) -> bool:
    """A folder written by ``mmsft data collect-libero`` (its ``meta.json`` names the episode format)."""
    meta = Path(path) / "meta.json"
    if not (Path(path).is_dir() and meta.is_file() and (Path(path) / "index.jsonl").is_file()):
        return False
    try:
        return json.loads(meta.read_text()).get("format") == EPISODE_FORMAT
    except (ValueError, OSError, AttributeError):
        return False


def _array_header(archive: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an ``.npz`` without decompressing its data."""
    with archive.open(f"{key}.npy") as handle:
        version = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(handle)
    return tuple(shape), np.dtype(dtype)


@dataclass
class _Episode:
    file: Path
    task_id: int
    init_state: int
    instruction: str
    steps: int
    actions: np.ndarray  # (T, 7) float32
    proprio: np.ndarray  # (T, 8) float32


def _read_episode(root: Path, row: dict[str, Any], cameras: Sequence[str], line: int) -> _Episode:
    """Validate one episode's arrays (image headers only) and load its actions and proprio."""
    where = f"{root / 'index.jsonl'}:{line}"
    rel = row.get("file")
    if not isinstance(rel, str) or not rel:
        raise DataError(f"{where}: index row has no 'file'")
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise DataError(f"{where}: episode file {rel!r} is missing or outside {root}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
            needed = {"actions", "proprio", "instruction", *(f"images_{c}" for c in cameras)}
            if needed - names:
                raise DataError(f"{path}: missing array(s) {sorted(needed - names)} (has {sorted(names)}); "
                                f"record the cameras {list(cameras)} or set data.loader_args.cameras")
            headers = {k: _array_header(archive, k) for k in needed if k.startswith("images_")}
        with np.load(path, allow_pickle=False) as data:
            actions = np.asarray(data["actions"])
            proprio = np.asarray(data["proprio"])
            instruction = str(data["instruction"])
    except DataError:
        raise
    except Exception as exc:  # a truncated or corrupt archive raises zipfile / numpy / OS errors
        raise DataError(f"{path}: not a readable episode archive ({type(exc).__name__}: {exc})") from None
    steps = len(actions)
    if actions.ndim != 2 or actions.shape[1] != 7 or steps == 0 or not np.all(np.isfinite(actions)):
        raise DataError(f"{path}: 'actions' must be a non-empty finite (T, 7) array, got {actions.dtype} "
                        f"{actions.shape}")
    if proprio.shape != (steps, 8):
        raise DataError(f"{path}: 'proprio' has shape {proprio.shape}, expected ({steps}, 8)")
    for key, (shape, dtype) in headers.items():
        if len(shape) != 4 or shape[0] != steps or shape[3] != 3 or dtype != np.uint8:
            raise DataError(f"{path}: {key!r} is {dtype} {shape}, expected uint8 ({steps}, H, W, 3)")
    if int(row.get("num_steps", steps)) != steps:
        raise DataError(f"{path}: index.jsonl says {row.get('num_steps')} steps, the archive holds {steps}")
    return _Episode(path, int(row.get("task_id", -1)), int(row.get("init_state", -1)), instruction, steps,
                    actions.astype(np.float32), proprio.astype(np.float32))


class EpisodeSamples(Sequence[Sample]):
    """Lazy samples of an episode folder; see the module docstring."""

    def __init__(self, root: Path, args: EpisodeArgs, split: str) -> None:
        self.root, self.args, self.split = Path(root), args, split
        meta = json.loads((self.root / "meta.json").read_text())
        rows = read_index(self.root)
        chosen: list[tuple[int, dict[str, Any]]] = []
        for line, row in enumerate(rows, start=1):
            if args.successes_only and not row.get("success", False):
                continue
            if args.tasks and int(row.get("task_id", -1)) not in args.tasks:
                continue
            chosen.append((line, row))
        by_task: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for line, row in chosen:
            by_task.setdefault(int(row.get("task_id", -1)), []).append((line, row))
        selected = []
        for task in sorted(by_task):
            ordered = sorted(by_task[task], key=lambda item: (int(item[1].get("init_state", 0)), item[1]["file"]))
            cut = len(ordered) - args.val_episodes if args.val_episodes else len(ordered)
            if args.val_episodes and cut < 1:
                raise DataError(f"{self.root}: task {task} has {len(ordered)} episodes; val_episodes="
                                f"{args.val_episodes} would leave none for training")
            selected += {"train": ordered[:cut], "val": ordered[cut:], "all": ordered}[split]
        if not selected:
            raise DataError(f"{self.root}: no episodes for split {split!r} (successes_only={args.successes_only}, "
                            f"tasks={args.tasks or 'all'}, {len(rows)} episodes in index.jsonl)")
        self.episodes = [_read_episode(self.root, row, args.cameras, line) for line, row in selected]
        sizes = {int(row.get("image_size", 0)) for _, row in selected}
        if len(sizes) != 1:
            raise DataError(f"{self.root}: episodes were recorded at several image sizes {sorted(sizes)}")
        self.image_size = sizes.pop()
        self.render = str(meta.get("render", "fast"))
        self._steps = [(e, t) for e in range(len(self.episodes)) for t in range(self.episodes[e].steps)]
        self.padded_targets = sum(min(args.chunk - 1, ep.steps) for ep in self.episodes)
        self.interface = VLAInterface(cameras=tuple(args.cameras), image_size=self.image_size, render=self.render,
                                      proprio=bool(args.proprio), chunk=args.chunk)
        self._images: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    # ---- Sequence -----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._steps)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        episode_index, t = self._steps[index]
        episode = self.episodes[episode_index]
        target = episode.actions[np.minimum(np.arange(t, t + self.args.chunk), episode.steps - 1)]
        images = {c: frames[t] for c, frames in self._frames(episode_index).items()}
        rel = episode.file.relative_to(self.root.resolve())
        return self.interface.sample(f"{episode.file.stem}/t{t:04d}", episode.instruction, images,
                                     episode.proprio[t], actions=target.tolist(), source=f"{self.root / rel}:step {t}",
                                     meta={"task_id": episode.task_id, "init_state": episode.init_state, "step": t})

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def _frames(self, episode_index: int) -> dict[str, np.ndarray]:
        if episode_index in self._images:
            self._images.move_to_end(episode_index)
            return self._images[episode_index]
        path = self.episodes[episode_index].file
        with np.load(path, allow_pickle=False) as data:
            frames = {c: np.asarray(data[f"images_{c}"]) for c in self.args.cameras}
        self._images[episode_index] = frames
        while len(self._images) > _CACHE_EPISODES:
            self._images.popitem(last=False)
        return frames

    # ---- statistics -----------------------------------------------------------------------------------------------
    def actions(self) -> np.ndarray:
        """Every recorded action of the split, ``(N, 7)``."""
        return np.concatenate([e.actions for e in self.episodes])

    def configure_model(self, loaded: Any, budget: Any) -> Any:
        """Fit or check the action tokenizer and record the interface (see the module docstring); returns the
        pixel budget the adapter must use."""
        from mmsft.models.action_tokenizer import ActionTokenizer, default_token_offset

        where = f"{self.root} (data.loader libero_episodes)"
        existing = loaded.action_tokenizer
        mode = self.args.action_stats
        if mode == "model" and existing is None:
            raise DataError(f"{where}: action_stats=model but the model folder has no action statistics")
        fit = mode == "fit" or (mode == "auto" and (existing is None or existing.num_fit_samples == 0))
        recorded = VLAInterface.of_model(existing, f"{where}: the model's interface") if existing else None
        try:
            chosen = recorded.resolve_budget(budget, where) if recorded is not None and not fit else budget
        except InterfaceError as exc:
            raise DataError(str(exc)) from None
        interface = VLAInterface(**_with_budget(self.interface, chosen))
        if recorded is not None and not fit and recorded != interface:
            raise DataError(f"{where}: the data gives the interface {_diff(recorded, interface)} but the model was "
                            "trained with the recorded one; match the model (data.loader_args, data.image_*_pixels) "
                            "or refit with action_stats: fit")
        if fit:
            if existing is not None:
                tokenizer = ActionTokenizer(existing.vocab_size, existing.n_bins, existing.low_quantile,
                                            existing.high_quantile, existing.token_offset, existing.order)
            else:
                rows = int(loaded.model.get_input_embeddings().num_embeddings)
                tokenizer_ = getattr(loaded.processor, "tokenizer", loaded.processor)
                try:
                    offset = default_token_offset(rows, tokenizer_, self.args.n_bins)
                except ValueError as exc:
                    raise DataError(f"{where}: {exc}") from None
                tokenizer = ActionTokenizer(rows, n_bins=self.args.n_bins, token_offset=offset)
            tokenizer.fit(self.actions())
            loaded.action_tokenizer, loaded.family = tokenizer, "vla"
        tokenizer = loaded.action_tokenizer
        if tokenizer.action_dim != 7:
            raise DataError(f"{where}: the model's action tokenizer has {tokenizer.action_dim} dimensions; LIBERO "
                            "actions have 7")
        tokenizer.interface = interface.to_dict()
        actions = self.actions()
        self.clipped_fraction = float(np.mean((actions < tokenizer.low) | (actions > tokenizer.high)))
        return chosen


def _with_budget(interface: VLAInterface, budget: Any) -> dict[str, Any]:
    values = interface.to_dict()
    values.pop("format")
    values.update(image_min_pixels=int(budget.image_min_pixels), image_max_pixels=int(budget.image_max_pixels))
    values["cameras"] = tuple(values["cameras"])
    return values


def _diff(recorded: VLAInterface, wanted: VLAInterface) -> str:
    a, b = recorded.to_dict(), wanted.to_dict()
    return ", ".join(f"{k}={b[k]!r} (recorded {a[k]!r})" for k in a if a[k] != b[k])


@DATASET_LOADERS.register("libero_episodes", detect=is_episode_folder)
def load_episodes(path: Path, args: dict[str, Any], role: str, media: Any = None) -> EpisodeSamples:
    """``data.loader: libero_episodes`` (detected automatically for a ``collect-libero`` folder)."""
    if role == "eval":
        raise DataError(f"data.eval_path {path}: an episode folder is not a generation-accuracy eval set; "
                        "evaluate a VLA in the simulator (mmsft eval-libero, evaluator libero_success)")
    parsed = EpisodeArgs.parse(args)
    if parsed.collect and not Path(path).exists():
        record_demonstrations(Path(path), parsed)
    if not is_episode_folder(path):
        raise DataError(f"{path} is not a LIBERO episode folder (expected meta.json with format {EPISODE_FORMAT!r} "
                        "and index.jsonl, as written by mmsft data collect-libero; or give data.loader_args.collect "
                        "to record it)")
    return EpisodeSamples(Path(path), parsed, "train" if parsed.split == "auto" else parsed.split)


def record_demonstrations(path: Path, args: EpisodeArgs) -> dict[str, Any]:
    """Record ``args.collect`` oracle demonstrations into the new folder ``path`` (successful episodes only)."""
    from tasks.libero.collect import CollectConfig, collect
    from tasks.libero.policies import load_policy

    spec = {"suite": "libero_spatial", "tasks": [0], "episodes_per_task": 20, "init_offset": 0, "workers": 1,
            "image_size": 128, "render": "fast", **args.collect}
    tasks = spec["tasks"]
    cfg = CollectConfig(suite=str(spec["suite"]), tasks=tuple(int(t) for t in tasks) if tasks is not None else None,
                        episodes_per_task=int(spec["episodes_per_task"]), init_offset=int(spec["init_offset"]),
                        workers=int(spec["workers"]), image_size=int(spec["image_size"]),
                        cameras=tuple(args.cameras), render=str(spec["render"]), successes_only=True, out_dir=path)
    try:
        cfg.validate()
    except ValueError as exc:
        raise DataError(f"data.loader_args.collect: {exc}") from None
    tmp = path.with_name(path.name + ".recording")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    counts = collect(load_policy("oracle"), dataclasses.replace(cfg, out_dir=tmp))
    tmp.rename(path)  # only a finished recording becomes the dataset
    return counts
