"""Render quality settings and image post-processing for LIBERO cameras.

Two modes:

- ``"paper"``: the published protocol. Render at 256x256 with LIBERO's default quality (shadows, reflections,
  multisampling), rotate 180 degrees, resize to the requested size (224 in the papers) with Lanczos.
- ``"fast"``: render directly at the requested size with shadows, reflections and multisampling off (about 2-3x
  cheaper on a CPU renderer; images still look right). robosuite rebuilds the simulator *and* its render context
  on every hard reset, so :func:`apply_fast_render` must run after every reset; it marks the context it tuned so
  repeated calls on the same context cost nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from envs.libero.suites import PAPER_RENDER_SIZE

RENDER_MODES = ("fast", "paper")
_TUNED_MARK = "_mmsft_fast_render"


def check_render_mode(render: str) -> str:
    """Return ``render`` if valid, else raise ``ValueError`` naming the valid modes."""
    if render not in RENDER_MODES:
        raise ValueError(f"render={render!r} is not a render mode; expected one of {list(RENDER_MODES)}")
    return render


def render_size(render: str, image_size: int) -> int:
    """Side length the simulator renders at: 256 in paper mode, ``image_size`` in fast mode."""
    return PAPER_RENDER_SIZE if check_render_mode(render) == "paper" else int(image_size)


def apply_fast_render(sim: Any) -> bool:
    """Turn off shadows, reflections and MSAA on ``sim``'s offscreen context. Returns True if it changed anything.

    ``sim`` is a robosuite ``MjSim``. Does nothing when the sim has no offscreen context (physics only) or the
    context was already tuned.
    """
    import mujoco

    ctx = getattr(sim, "_render_context_offscreen", None)
    if ctx is None or getattr(ctx, _TUNED_MARK, False):
        return False
    ctx.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    model = sim.model._model
    if model.vis.quality.offsamples != 0:
        model.vis.quality.offsamples = 0
        ctx.gl_ctx.make_current()
        ctx.con.free()
        ctx.con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, ctx.con)
    setattr(ctx, _TUNED_MARK, True)
    return True


def upright(image: np.ndarray, out_size: int) -> np.ndarray:
    """Rotate a raw robosuite (OpenGL-convention) frame by 180 degrees and resize it to ``out_size`` if needed."""
    frame = np.ascontiguousarray(image[::-1, ::-1])
    if frame.shape[0] != out_size or frame.shape[1] != out_size:
        frame = np.asarray(Image.fromarray(frame).resize((out_size, out_size), Image.Resampling.LANCZOS))
    return frame
