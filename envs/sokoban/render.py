"""Text and image rendering of Sokoban states from one source of truth (the gym-sokoban code grid).

Text uses the de-facto symbols of RAGEN / "Debunk the Myth of SFT Generalization" (arXiv 2510.00237):
``#`` wall, ``_`` floor, ``O`` target, ``X`` box, ``√`` box on target, ``P`` player, ``S`` player on target; other
vocabularies are just other symbol tuples. Images are drawn from procedurally generated sprite tiles (no external
PNGs) cached per cell size, so a frame is a single gather over the code grid. Qwen2.5-VL sees 28 px per visual
token, hence the default of 48 px per cell.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from envs.sokoban.level import BOX, BOX_ON_TARGET, NUM_CODES, PLAYER, PLAYER_ON_TARGET, TARGET, WALL

#: Symbols indexed by code (wall, floor, target, box on target, box, player, player on target).
DEFAULT_SYMBOLS: tuple[str, ...] = ("#", "_", "O", "√", "X", "P", "S")
DEFAULT_CELL_PX = 48


def validate_symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    """Check a symbol tuple: one non-empty, newline-free, distinct string per code."""
    symbols = tuple(symbols)
    if len(symbols) != NUM_CODES:
        raise ValueError(f"symbols must have {NUM_CODES} entries (wall, floor, target, box on target, box, player, "
                         f"player on target), got {len(symbols)}: {symbols}")
    if any(not s or "\n" in s for s in symbols) or len(set(symbols)) != NUM_CODES:
        raise ValueError(f"symbols must be distinct non-empty strings without newlines, got {symbols}")
    return symbols


def render_text(codes: np.ndarray, symbols: Sequence[str] = DEFAULT_SYMBOLS) -> str:
    """Render a code grid as rows of symbols separated by newlines."""
    table = symbols
    return "\n".join("".join(table[c] for c in row) for row in np.asarray(codes).tolist())


@lru_cache(maxsize=None)
def _codepoint_table(symbols: tuple[str, ...]) -> np.ndarray | None:
    if all(len(s) == 1 for s in symbols):
        return np.array([ord(s) for s in symbols], dtype=np.uint32)
    return None


def render_text_batch(codes: np.ndarray, symbols: Sequence[str] = DEFAULT_SYMBOLS) -> list[str]:
    """Render a ``(B, H, W)`` code array to B strings in one vectorised gather (single-character symbols)."""
    codes = np.asarray(codes)
    if codes.ndim != 3:
        raise ValueError(f"render_text_batch expects (B, H, W) codes, got shape {codes.shape}")
    symbols = tuple(symbols)
    table = _codepoint_table(symbols)
    if table is None:
        return [render_text(c, symbols) for c in codes]
    b, h, w = codes.shape
    chars = np.empty((b, h, w + 1), dtype=np.uint32)
    chars[:, :, :w] = table[codes]
    chars[:, :, w] = ord("\n")
    flat = np.ascontiguousarray(chars.reshape(b, h * (w + 1))[:, :-1])
    return flat.view(f"<U{h * (w + 1) - 1}").reshape(b).tolist()


def _draw_target(draw: ImageDraw.ImageDraw, px: int) -> None:
    m = px / 2
    r = px * 0.3
    draw.polygon([(m, m - r), (m + r, m), (m, m + r), (m - r, m)], outline=(220, 40, 40), width=max(1, px // 16))
    draw.rectangle([px * 0.1, px * 0.1, px * 0.9 - 1, px * 0.9 - 1], outline=(180, 30, 30), width=max(1, px // 24))


def _draw_box(draw: ImageDraw.ImageDraw, px: int, fill: tuple[int, int, int], edge: tuple[int, int, int]) -> None:
    lo, hi = px * 0.1, px * 0.9 - 1
    w = max(1, px // 12)
    draw.rectangle([lo, lo, hi, hi], fill=fill, outline=edge, width=w)
    draw.line([(lo, lo), (hi, hi)], fill=edge, width=w)
    draw.line([(lo, hi), (hi, lo)], fill=edge, width=w)


def _draw_player(draw: ImageDraw.ImageDraw, px: int) -> None:
    draw.ellipse([px * 0.22, px * 0.12, px * 0.78, px * 0.68], fill=(60, 200, 90), outline=(20, 90, 40),
                 width=max(1, px // 24))
    draw.rectangle([px * 0.35, px * 0.62, px * 0.65, px * 0.9], fill=(40, 150, 70))
    for ex in (0.38, 0.62):
        draw.ellipse([px * (ex - 0.07), px * 0.3, px * (ex + 0.07), px * 0.44], fill=(255, 255, 255))
        draw.ellipse([px * (ex - 0.03), px * 0.34, px * (ex + 0.03), px * 0.42], fill=(0, 0, 0))


def _tile(code: int, px: int) -> np.ndarray:
    floor_rgb = (40, 40, 44)
    img = Image.new("RGB", (px, px), floor_rgb)
    draw = ImageDraw.Draw(img)
    if code == WALL:
        draw.rectangle([0, 0, px - 1, px - 1], fill=(150, 70, 50))
        mortar = (95, 45, 35)
        lw = max(1, px // 16)
        for k in range(1, 4):
            y = k * px // 4
            draw.line([(0, y), (px, y)], fill=mortar, width=lw)
            off = 0 if k % 2 else px // 2
            for x in range(off, px, px // 2):
                draw.line([(x, y - px // 4), (x, y)], fill=mortar, width=lw)
    if code in (TARGET, PLAYER_ON_TARGET):
        _draw_target(draw, px)
    if code == BOX:
        _draw_box(draw, px, (230, 180, 60), (150, 90, 20))
    if code == BOX_ON_TARGET:
        _draw_box(draw, px, (90, 190, 90), (20, 100, 30))
    if code in (PLAYER, PLAYER_ON_TARGET):
        _draw_player(draw, px)
    return np.asarray(img, dtype=np.uint8)


@lru_cache(maxsize=32)
def sprite_atlas(cell_px: int) -> np.ndarray:
    """``(7, cell_px, cell_px, 3)`` uint8 tiles indexed by code; built once per cell size and cached."""
    if not isinstance(cell_px, int) or cell_px < 4:
        raise ValueError(f"cell_px={cell_px!r}: expected an int >= 4")
    atlas = np.stack([_tile(code, cell_px) for code in range(NUM_CODES)])
    atlas.setflags(write=False)
    return atlas


def render_image(codes: np.ndarray, cell_px: int = DEFAULT_CELL_PX) -> np.ndarray:
    """Render a ``(H, W)`` code grid to an ``(H*cell_px, W*cell_px, 3)`` uint8 image."""
    codes = np.asarray(codes)
    h, w = codes.shape
    tiles = sprite_atlas(cell_px)[codes]  # (H, W, px, px, 3)
    return tiles.transpose(0, 2, 1, 3, 4).reshape(h * cell_px, w * cell_px, 3)


def cell_px_for(dim: tuple[int, int], image_size: int) -> int:
    """Cell size that makes the longer side of a ``dim`` room at most ``image_size`` pixels."""
    px = image_size // max(dim)
    if px < 4:
        raise ValueError(f"image_size={image_size} is too small for a room of {dim} (needs >= 4 px per cell)")
    return px


__all__ = ["DEFAULT_SYMBOLS", "DEFAULT_CELL_PX", "render_text", "render_text_batch", "render_image", "sprite_atlas",
           "cell_px_for", "validate_symbols"]
