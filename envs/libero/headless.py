"""Headless rendering defaults and noise filters, applied before mujoco/robosuite are imported.

``MUJOCO_GL`` decides which OpenGL backend mujoco (and robosuite) load, and it is read once, at import time. So
:func:`configure_headless` must run before the first ``import mujoco``; :mod:`envs.libero.env` calls it at the
top of the module. It only sets variables the user has not set:

- ``MUJOCO_GL=egl`` (EGL works without a GPU: Mesa's llvmpipe renders on the CPU). ``MUJOCO_GL=osmesa`` is the
  documented fallback (``apt-get install libosmesa6``); ``glfw`` needs a display and is refused on headless hosts.
- ``PYOPENGL_PLATFORM`` follows ``MUJOCO_GL`` (PyOpenGL must load the same library).

Noise filtered: robosuite's "No private macro file found!" warnings at import, and exceptions raised by the EGL
context's ``__del__`` during interpreter teardown (robosuite/LIBERO know this as benign; we also close contexts
explicitly in ``LiberoEnv.close``).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from types import TracebackType
from typing import Any

SUPPORTED_BACKENDS = ("egl", "osmesa")
_MACRO_NOISE = ("private macro file", "setup_macros.py")
_CONTEXT_NAMES = ("EGLGLContext", "OSMesaGLContext", "MjRenderContext")
_TEARDOWN_FILES = ("robosuite/renderers/context/", "robosuite/utils/binding_utils.py", "/OpenGL/")
_configured = False


class _MacroNoiseFilter(logging.Filter):
    """Drops robosuite's import-time advice about a private macro file."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(marker in message for marker in _MACRO_NOISE)


def _is_teardown_noise(exc_tb: TracebackType | None, obj: Any) -> bool:
    """True for an exception raised by a GL render context's finalizer (robosuite EGL/OSMesa, PyOpenGL)."""
    where = repr(obj)
    if any(name in where for name in _CONTEXT_NAMES):
        return True
    tb = exc_tb
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if any(marker in filename for marker in _TEARDOWN_FILES):
            return True
        tb = tb.tb_next
    return False


def _install_unraisable_filter() -> None:
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if _is_teardown_noise(unraisable.exc_traceback, unraisable.object):
            return
        previous(unraisable)

    sys.unraisablehook = hook


def configure_headless() -> str:
    """Set the headless GL defaults and install the noise filters (idempotent). Returns the backend in use.

    Warns when robosuite was imported before ``MUJOCO_GL`` was set (it picks its GL context at import time).

    Raises:
        RuntimeError: if ``MUJOCO_GL`` names a backend that needs a display.
    """
    global _configured
    if "MUJOCO_GL" not in os.environ and "robosuite" in sys.modules:
        warnings.warn(
            "robosuite was imported before MUJOCO_GL was set; export MUJOCO_GL=egl (or osmesa) or import "
            "envs.libero.env first, otherwise rendering may try a display",
            RuntimeWarning,
            stacklevel=2,
        )
    backend = os.environ.setdefault("MUJOCO_GL", "egl").lower()
    if backend not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"MUJOCO_GL={backend!r} cannot render headless; expected one of {SUPPORTED_BACKENDS} "
            "(egl works on CPU with Mesa; osmesa needs `apt-get install libosmesa6`)"
        )
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    if not _configured:
        logging.getLogger("robosuite_logs").addFilter(_MacroNoiseFilter())
        _install_unraisable_filter()
        _configured = True
    return backend
