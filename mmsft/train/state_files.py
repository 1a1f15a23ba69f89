"""Pickle-free storage of state trees (optimizer, scheduler, RNG): JSON for structure and numbers, safetensors for tensors.

``torch.save``/``torch.load`` pickle, and unpickling a file a user points us at can run arbitrary code. A state tree
here is nested dicts, lists and tuples of ``None``/bool/int/float/str, torch tensors and numeric numpy arrays. It is
written as ``NAME.json`` (the tree, tensors replaced by ``{"__tensor__": key}``) and ``NAME.safetensors`` (the
tensors). Python floats round-trip exactly through JSON (``repr`` is shortest-exact), tensors bit-exactly through
safetensors, so a restored optimizer continues bit-identically. Reading parses JSON and safetensors only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

_TENSOR, _TUPLE, _ITEMS, _NDARRAY = "__tensor__", "__tuple__", "__items__", "__ndarray__"
_MARKERS = (_TENSOR, _TUPLE, _ITEMS, _NDARRAY)
_NUMERIC_KINDS = "biuf"  # numpy dtype kinds we accept: bool, signed, unsigned, float


class StateFileError(ValueError):
    """A state file is missing, malformed, or holds something we do not store; the message names the file."""


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{where}: numpy array of dtype {obj.dtype} cannot be stored")
        return {_NDARRAY: obj.dtype.str, "shape": list(obj.shape), "data": obj.ravel().tolist()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {_ITEMS: [[_encode(k, tensors, where), _encode(v, tensors, f"{where}[{k!r}]")] for k, v in obj.items()]}
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be stored without pickle")


def _decode(node: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors, where) for v in node]
    if not isinstance(node, dict):
        raise StateFileError(f"{where}: unexpected JSON value {node!r}")
    marker = next((k for k in _MARKERS if k in node), None)
    if marker is None:
        return {k: _decode(v, tensors, where) for k, v in node.items()}
    if marker == _TENSOR:
        key = node[_TENSOR]
        if not isinstance(key, str) or key not in tensors:
            raise StateFileError(f"{where}: refers to tensor {key!r}, which the tensor file does not hold")
        return tensors[key]
    if marker == _TUPLE:
        if not isinstance(node[_TUPLE], list):
            raise StateFileError(f"{where}: malformed tuple entry")
        return tuple(_decode(v, tensors, where) for v in node[_TUPLE])
    if marker == _ITEMS:
        items = node[_ITEMS]
        if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
            raise StateFileError(f"{where}: malformed mapping entry")
        return {_hashable(_decode(k, tensors, where), where): _decode(v, tensors, where) for k, v in items}
    try:
        dtype = np.dtype(node[_NDARRAY])
        if dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"dtype {dtype} is not numeric")
        return np.asarray(node["data"], dtype=dtype).reshape(node["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(f"{where}: malformed array entry ({exc})") from None


def _hashable(key: Any, where: str) -> Any:
    if isinstance(key, (str, int, float, bool, tuple)) or key is None:
        return key
    raise StateFileError(f"{where}: mapping key {key!r} is not a plain value")


def save_state(folder: Path, name: str, tree: Any) -> list[Path]:
    """Write ``folder/NAME.json`` (+ ``NAME.safetensors`` when the tree holds tensors); returns the written files."""
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(tree, tensors, name)
    tensor_file = f"{name}.safetensors" if tensors else None
    written = []
    if tensor_file:
        save_file(tensors, str(folder / tensor_file))
        written.append(folder / tensor_file)
    (folder / f"{name}.json").write_text(json.dumps({"format": 1, "tensor_file": tensor_file, "tree": encoded}))
    written.append(folder / f"{name}.json")
    return written


def load_state(folder: Path, name: str) -> Any:
    """Read a tree written by :func:`save_state`; any problem raises :class:`StateFileError` naming the file."""
    json_path = Path(folder) / f"{name}.json"
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateFileError(f"{json_path}: file is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise StateFileError(f"{json_path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != 1 or "tree" not in doc:
        raise StateFileError(f"{json_path}: not an mmsft state file (expected keys format=1, tensor_file, tree)")
    tensors: dict[str, torch.Tensor] = {}
    tensor_file = doc.get("tensor_file")
    if tensor_file is not None:
        if tensor_file != f"{name}.safetensors":
            raise StateFileError(f"{json_path}: tensor_file must be {name}.safetensors, got {tensor_file!r}")
        tensor_path = Path(folder) / tensor_file
        try:
            tensors = load_file(str(tensor_path), device="cpu")
        except FileNotFoundError:
            raise StateFileError(f"{tensor_path}: file is missing") from None
        except Exception as exc:  # safetensors raises its own error types for truncated or malformed files
            raise StateFileError(f"{tensor_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    try:
        return _decode(doc["tree"], tensors, str(json_path))
    except RecursionError:
        raise StateFileError(f"{json_path}: nested too deeply") from None
