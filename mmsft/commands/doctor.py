"""``mmsft doctor``: what this machine can do, in one table, each line with a fix hint.

Checks: Python; torch, torchvision, transformers, accelerate, peft versions against mmsft's pins and whether
torchvision imports (an ABI mismatch with torch shows here first); video decoding of a freshly generated clip with
decord and with PyAV; EGL and OSMesa rendering for LIBERO (a MuJoCo GL context); CPU bf16 (AMX / AVX-512 BF16 flags
and a bf16 vs fp32 matmul timing); CUDA devices; the optional extras. Probes that load native libraries run in a
subprocess with a timeout, so a crash or a hang is reported instead of taken down with it. Always exits 0;
``--json`` prints the checks as JSON.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

PROBE_TIMEOUT_S = 60
CORE = ("torch", "torchvision", "transformers", "accelerate", "peft")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as a JSON list (name, status, detail, hint)")
    parser.add_argument("--timeout", type=float, default=PROBE_TIMEOUT_S,
                        help=f"seconds allowed to each subprocess probe (default {PROBE_TIMEOUT_S})")


def run(args: argparse.Namespace) -> int:
    checks = run_checks(timeout=args.timeout)
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    colours = {"ok": "green", "warn": "yellow", "missing": "yellow", "fail": "red", "info": "cyan"}
    table = Table(title="mmsft doctor", show_lines=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        colour = colours.get(check.status, "white")
        table.add_row(escape(check.name), f"[{colour}]{check.status}[/{colour}]", escape(check.detail),
                      escape(check.hint))
    console = Console()
    console.print(table)
    bad = [c.name for c in checks if c.status == "fail"]
    console.print(f"{len(checks)} checks; " + (f"failing: {', '.join(bad)}" if bad else "nothing failing")
                  + " — see the fix column; docs/reports.md explains each check.")
    return 0


# ------------------------------------------------------------------------------------------------------------ checks
@dataclass
class Check:
    name: str
    status: str  # ok | warn | missing | fail | info
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _probe(code: str, timeout: float, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Run ``python -c code`` in a subprocess: (exit code 0, last line of output or the failure)."""
    try:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:g} s"
    except OSError as exc:
        return False, f"could not start a Python subprocess ({exc})"
    lines = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines() if line.strip()]
    if done.returncode < 0:
        return False, f"crashed (signal {-done.returncode})" + (f": {lines[-1][:200]}" if lines else "")
    return done.returncode == 0, (lines[-1][:300] if lines else f"exit code {done.returncode}")


def _requirements() -> tuple[list[str], dict[str, list[str]]]:
    """mmsft's core requirements and its extras, from the source tree's pyproject.toml when run from a checkout
    (an editable install's metadata lags behind edits), else from the installed metadata."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == "mmsft":
            return list(project.get("dependencies", [])), dict(project.get("optional-dependencies", {}))
    from packaging.requirements import Requirement

    core: list[str] = []
    extras: dict[str, list[str]] = {}
    for text in importlib.metadata.requires("mmsft") or []:
        requirement = Requirement(text)
        found = re.search(r"""extra\s*==\s*["']([^"']+)["']""", str(requirement.marker or ""))
        if found:
            extras.setdefault(found.group(1), []).append(text.split(";")[0].strip())
        else:
            core.append(text)
    return core, extras


def _requirement_state(text: str) -> tuple[str, str | None, bool | None]:
    """(distribution name, installed version or None, whether it satisfies the specifier; None: does not apply)."""
    from packaging.requirements import Requirement

    requirement = Requirement(text)
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        return requirement.name, None, None
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return requirement.name, None, False
    return requirement.name, version, requirement.specifier.contains(version, prereleases=True)


def check_versions(core: list[str], extras: dict[str, list[str]]) -> list[Check]:
    import platform

    out = [Check("python", "ok" if sys.version_info >= (3, 10) else "fail", platform.python_version(),
                 "" if sys.version_info >= (3, 10) else "mmsft needs Python >= 3.10")]
    pins = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower(): r for r in core + extras.get("video", [])}
    for name in CORE:
        pin = pins.get(name, name)
        _, version, ok = _requirement_state(pin)
        if version is None:
            out.append(Check(name, "missing", "not installed", f"pip install '{pin}'" if name != "torchvision"
                             else "pip install 'mmsft[video]' (install torchvision from the same index as torch)"))
        elif ok is False:
            out.append(Check(name, "warn", f"{version} (mmsft wants {pin})", f"pip install '{pin}'"))
        else:
            out.append(Check(name, "ok", version))
    return out


def check_torchvision(timeout: float) -> Check:
    try:
        importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return Check("torchvision import", "missing", "not installed", "pip install 'mmsft[video]'")
    ok, detail = _probe("import torch, torchvision; torchvision.ops.nms; print('imports with torch', torch.__version__)",
                        timeout)
    return Check("torchvision import", "ok" if ok else "fail", detail,
                 "" if ok else "torchvision does not match torch: reinstall both from the same index "
                               "(pip install --force-reinstall torch torchvision)")


_MAKE_CLIP = """
import sys, av, numpy as np
with av.open(sys.argv[1], "w") as out:
    stream = out.add_stream("mpeg4", rate=8)
    stream.width = stream.height = 32
    stream.pix_fmt = "yuv420p"
    for i in range(8):
        frame = np.zeros((32, 32, 3), np.uint8); frame[:, : 4 * (i + 1)] = (200, 40, 40)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
print("ok")
"""
_DECODE = {
    "decord": "import sys, decord; r = decord.VideoReader(sys.argv[1]); f = r.get_batch(list(range(len(r)))).asnumpy(); "
              "print(f'{f.shape[0]} frames of {f.shape[1]}x{f.shape[2]} decoded')",
    "av": "import sys, av\nwith av.open(sys.argv[1]) as c:\n    f = [x.to_ndarray(format='rgb24') for x in c.decode(video=0)]\n"
          "print(f'{len(f)} frames of {f[0].shape[0]}x{f[0].shape[1]} decoded')",
}


def check_video(timeout: float, folder: Path) -> list[Check]:
    clip = folder / "doctor-clip.mp4"
    made, why = _probe(_MAKE_CLIP, timeout, args=(str(clip),)) if _installed("av") else (False, "PyAV not installed")
    out = []
    for name, code in _DECODE.items():
        label = f"video decode ({'PyAV' if name == 'av' else name})"
        if not _installed(name):
            out.append(Check(label, "missing", "not installed", "pip install 'mmsft[video]'"
                             + (" (decord has wheels for x86_64 only; PyAV covers other machines)" if name == "decord"
                                else "")))
        elif not made:
            out.append(Check(label, "warn", f"could not make a test clip ({why})", "pip install 'mmsft[video]'"))
        else:
            ok, detail = _probe(code, timeout, args=(str(clip),))
            out.append(Check(label, "ok" if ok else "fail", detail,
                             "" if ok else f"reinstall {name} (pip install --force-reinstall {name}); video samples "
                                           "need one working decoder"))
    return out


_GL = ("import mujoco; ctx = mujoco.GLContext(32, 32); ctx.make_current(); ctx.free(); "
       "print('MuJoCo', mujoco.__version__, 'GL context made')")


def check_rendering(timeout: float) -> list[Check]:
    import ctypes.util

    out = []
    for backend, library, package in (("egl", "EGL", "libegl1 (and a GPU driver for GPU rendering)"),
                                      ("osmesa", "OSMesa", "libosmesa6")):
        label = f"LIBERO rendering ({backend.upper() if backend == 'egl' else 'OSMesa'})"
        found = ctypes.util.find_library(library)
        if not _installed("mujoco"):
            status = "missing"
            detail = f"MuJoCo not installed; lib{library}: {'found' if found else 'not found'}"
            out.append(Check(label, status, detail, "pip install 'mmsft[libero]' (LIBERO only)"))
            continue
        ok, detail = _probe(_GL, timeout, env={"MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend})
        hint = "" if ok else (f"apt-get install {package}; then run with MUJOCO_GL={backend}" if not found else
                              f"lib{library} is present but no context could be made; try the other backend")
        status = "ok" if ok else "fail" if found else "missing"
        out.append(Check(label, status, detail if ok else f"{detail} (lib{library}: "
                         f"{'found' if found else 'not found'})", hint))
    return out


def check_bf16() -> Check:
    import torch

    from mmsft.report.environment import cpu_info

    info = cpu_info()
    flags = info["bf16_flags"]

    def best(dtype: torch.dtype) -> float:
        a = torch.randn(384, 384, dtype=dtype)
        b = torch.randn(384, 384, dtype=dtype)
        torch.mm(a, b)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - started)
        return min(times)

    fp32, bf16 = best(torch.float32), best(torch.bfloat16)
    detail = (f"{info['model']}; flags: {', '.join(flags) or 'no amx_bf16 / avx512_bf16'}; 384² matmul bf16 "
              f"{bf16 * 1e3:.2f} ms vs fp32 {fp32 * 1e3:.2f} ms ({fp32 / bf16:.2f}× fp32 speed)")
    if flags and bf16 < fp32:
        return Check("CPU bf16", "ok", detail, "train.mixed_precision=bf16 / model.dtype=bfloat16 pay off here")
    return Check("CPU bf16", "info", detail, "bf16 is emulated or not faster on this CPU: keep float32 on CPU"
                 if not flags or bf16 >= fp32 else "")


def check_cuda() -> Check:
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda
        return Check("CUDA", "info", f"no CUDA device (torch {torch.__version__}, built for CUDA {built or 'none'})",
                     "CPU only: fine for the tiny models and tests; for GPUs install a CUDA build of torch")
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(f"{index}: {props.name} ({props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor})")
    bf16 = torch.cuda.is_bf16_supported()
    return Check("CUDA", "ok", f"CUDA {torch.version.cuda}; " + "; ".join(devices) + f"; bf16 {'yes' if bf16 else 'no'}",
                 "" if bf16 else "no bf16 on this GPU: use train.mixed_precision=fp16 or no")


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_extras(extras: dict[str, list[str]]) -> list[Check]:
    out = []
    for extra, requirements in extras.items():
        states = [_requirement_state(r) for r in requirements]
        applicable = [(name, version, ok) for name, version, ok in states if ok is not None]
        missing = [name for name, version, ok in applicable if version is None]
        wrong = [f"{name} {version}" for name, version, ok in applicable if version is not None and not ok]
        have = [f"{name} {version}" for name, version, ok in applicable if ok]
        if not missing and not wrong:
            out.append(Check(f"extra [{extra}]", "ok", ", ".join(have) or "nothing needed on this platform"))
        else:
            detail = "; ".join(filter(None, [f"missing: {', '.join(missing)}" if missing else "",
                                             f"other version: {', '.join(wrong)}" if wrong else ""]))
            out.append(Check(f"extra [{extra}]", "missing" if missing else "warn", detail,
                             f"pip install 'mmsft[{extra}]'" + (" (then: bash scripts/install_libero.sh)"
                                                                 if extra == "libero" else "")))
    return out


def run_checks(timeout: float = PROBE_TIMEOUT_S) -> list[Check]:
    """Every check, subprocess probes in parallel; nothing here raises."""
    core, extras = _requirements()
    with tempfile.TemporaryDirectory(prefix="mmsft-doctor-") as folder, ThreadPoolExecutor(max_workers=4) as pool:
        torchvision = pool.submit(check_torchvision, timeout)
        video = pool.submit(check_video, timeout, Path(folder))
        rendering = pool.submit(check_rendering, timeout)
        checks = check_versions(core, extras)
        checks.append(torchvision.result())
        checks += video.result()
        checks += rendering.result()
        for check in (check_bf16, check_cuda):
            try:
                checks.append(check())
            except Exception as exc:  # noqa: BLE001 — the doctor reports, it does not crash
                checks.append(Check(check.__name__.removeprefix("check_"), "fail", f"{type(exc).__name__}: {exc}"))
        checks += check_extras(extras)
    return checks
