"""Text and image renderers for the VGRP-Bench puzzles (Ren et al., arXiv 2503.23064).

Images follow the VGRP screenshot style (800 px by default): white background, grey rounded cells, bold black
givens, side clues in dark red, pastel fills for regions, cages and colour groups. The static part (background
and cell squares) is cached per layout, so a render is a copy plus the instance-specific marks.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from envs.vgrp.core import EMPTY, Grid, Instance, Puzzle

CLUE_RED = (150, 20, 20)
GIVEN = (10, 10, 10)
CELL_GREY = (222, 222, 222)
LINE = (60, 60, 60)
PASTELS = [
    (255, 179, 186), (255, 223, 186), (255, 255, 186), (186, 255, 201), (186, 225, 255), (221, 190, 255),
    (255, 204, 229), (204, 255, 229), (229, 204, 153), (190, 200, 255), (200, 240, 160), (250, 200, 150),
    (170, 230, 230), (240, 170, 210), (210, 210, 140), (180, 180, 180),
]
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")


@functools.lru_cache(maxsize=128)
def font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (bold) at ``size`` px, falling back to Pillow's built-in scalable font."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for d in _FONT_DIRS:
        path = os.path.join(d, name)
        if os.path.exists(path):
            return ImageFont.truetype(path, max(6, size))
    return ImageFont.load_default(size=max(6, size))


class Canvas:
    """Layout of an n x n board on a ``px`` square image, with margins for side clues."""

    def __init__(self, n: int, px: int, margins: tuple[str, ...], margin_frac: float | None = None,
                 opaque_text: bool = True):
        if not isinstance(px, int) or px < 64:
            raise ValueError(f"image_px={px!r}: expected an int >= 64")
        self.n, self.px = n, px
        self.left, self.top, self.cell = _layout(n, px, tuple(sorted(margins)), margin_frac)
        # draw straight into a numpy buffer: RGBA images made by frombuffer share memory with the array, so the
        # observation needs no Image -> array conversion (which costs more than the drawing at 800 px)
        self.array = _base(n, px, tuple(sorted(margins)), margin_frac).copy()
        self.image = Image.frombuffer("RGBA", (px, px), self.array, "raw", "RGBA", 0, 1)
        self.image.readonly = 0
        self.draw = ImageDraw.Draw(self.image)
        # background colour of each cell's centre, so cell text can be pasted as a pre-blended opaque tile
        self.opaque_text = opaque_text
        self.bg = [[CELL_GREY] * n for _ in range(n)]

    def box(self, r: int, c: int, inset: float = 0.0) -> tuple[float, float, float, float]:
        x0 = self.left + c * self.cell
        y0 = self.top + r * self.cell
        d = inset * self.cell
        return (x0 + d, y0 + d, x0 + self.cell - d, y0 + self.cell - d)

    def center(self, r: float, c: float) -> tuple[float, float]:
        return (self.left + (c + 0.5) * self.cell, self.top + (r + 0.5) * self.cell)

    def text(self, xy: tuple[float, float], s: str, frac: float = 0.55, color: tuple[int, int, int] = GIVEN,
             anchor: str = "mm") -> None:
        """Cell-sized text: ``frac`` of the cell size in px."""
        self.label(xy, s, int(self.cell * frac), color, anchor)

    def cell_text(self, r: int, c: int, s: str, color: tuple[int, int, int] = GIVEN, frac: float = 0.55) -> None:
        """Text centred in cell (r, c); an opaque pre-blended tile when the cell centre is a known plain colour."""
        size = max(6, int(self.cell * frac))
        x, y = self.center(r, c)
        if not self.opaque_text:
            self.label((x, y), s, size, color)
            return
        tile, dx, dy = _tile(s, size, color, self.bg[r][c])
        self.image.paste(tile, (int(round(x)) + dx, int(round(y)) + dy))

    def label(self, xy: tuple[float, float], s: str, size: int, color: tuple[int, int, int] = GIVEN,
              anchor: str = "mm") -> None:
        """Text of ``size`` px at ``xy`` (PIL anchor), pasted from a cached anti-aliased glyph mask."""
        mask, dx, dy = _glyph(s, max(6, int(size)), anchor)
        self.image.paste(color + (255,), (int(round(xy[0])) + dx, int(round(xy[1])) + dy), mask)

    def fill(self, r: int, c: int, color: tuple[int, int, int], inset: float = 0.06) -> None:
        self.draw.rectangle(self.box(r, c, inset), fill=color)
        if inset <= 0.1:
            self.bg[r][c] = color

    def disk(self, r: int, c: int, color: tuple[int, int, int], frac: float = 0.3,
             outline: tuple[int, int, int] | None = None) -> None:
        x, y = self.center(r, c)
        d = self.cell * frac
        self.draw.ellipse((x - d, y - d, x + d, y + d), fill=color, outline=outline, width=max(1, int(self.cell / 20)))

    def row_clue(self, r: int, s: str, side: str = "left", color: tuple[int, int, int] = CLUE_RED) -> None:
        y = self.top + (r + 0.5) * self.cell
        x = self.left / 2 if side == "left" else self.left + self.n * self.cell + (self.px - self.left - self.n * self.cell) / 2
        self.label((x, y), s, int(min(self.cell * 0.5, self.left * 0.6)), color)

    def col_clue(self, c: int, s: str, side: str = "top", color: tuple[int, int, int] = CLUE_RED) -> None:
        x = self.left + (c + 0.5) * self.cell
        y = self.top / 2 if side == "top" else self.top + self.n * self.cell + (self.px - self.top - self.n * self.cell) / 2
        self.label((x, y), s, int(min(self.cell * 0.5, self.top * 0.6)), color)

    def regions(self, reg: list[list[int]], colors: bool = True, width_frac: float = 0.06) -> None:
        """Pastel fill per region id and thick borders between different regions."""
        n = self.n
        if colors:
            for r in range(n):
                for c in range(n):
                    self.fill(r, c, PASTELS[reg[r][c] % len(PASTELS)], inset=0.04)
        w = max(2, int(self.cell * width_frac))
        for r in range(n):
            for c in range(n):
                x0, y0, x1, y1 = self.box(r, c)
                if c + 1 < n and reg[r][c] != reg[r][c + 1]:
                    self.draw.line((x1, y0, x1, y1), fill=LINE, width=w)
                if r + 1 < n and reg[r][c] != reg[r + 1][c]:
                    self.draw.line((x0, y1, x1, y1), fill=LINE, width=w)
        x0, y0 = self.left, self.top
        side = n * self.cell
        self.draw.rectangle((x0, y0, x0 + side, y0 + side), outline=LINE, width=w)

    def to_array(self) -> np.ndarray:
        """HxWx3 uint8 view of the drawing buffer (a fresh buffer per render, so safe to keep)."""
        return self.array[:, :, :3]


def _layout(n: int, px: int, margins: tuple[str, ...], margin_frac: float | None = None) -> tuple[int, int, float]:
    """(left offset, top offset, cell size) of the board for the given side-clue margins."""
    pad = max(4, px // 40)
    frac = margin_frac if margin_frac is not None else (0.10 if n <= 8 else 0.12)
    clue = max(pad, int(px * frac))
    left = clue if "left" in margins else pad
    top = clue if "top" in margins else pad
    right = clue if "right" in margins else pad
    bottom = clue if "bottom" in margins else pad
    return left, top, min(px - left - right, px - top - bottom) / n


@functools.lru_cache(maxsize=4096)
def _glyph(s: str, size: int, anchor: str) -> tuple[Image.Image, int, int]:
    """(mask, dx, dy): an "L" mask of ``s`` and its offset from the anchor point."""
    f = font(size)
    left, top, right, bottom = f.getbbox(s, anchor=anchor)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), s, fill=255, font=f, anchor=anchor)
    return mask, left, top


@functools.lru_cache(maxsize=8192)
def _tile(s: str, size: int, color: tuple[int, int, int], bg: tuple[int, int, int]) -> tuple[Image.Image, int, int]:
    """(tile, dx, dy): centred text pre-blended onto a plain background (a copy-paste instead of a masked fill)."""
    mask, dx, dy = _glyph(s, size, "mm")
    tile = Image.new("RGBA", mask.size, tuple(bg) + (255,))
    tile.paste(tuple(color) + (255,), (0, 0), mask)
    return tile, dx, dy


@functools.lru_cache(maxsize=64)
def _base(n: int, px: int, margins: tuple[str, ...], margin_frac: float | None) -> np.ndarray:
    canvas = Canvas.__new__(Canvas)
    canvas.n, canvas.px = n, px
    canvas.left, canvas.top, canvas.cell = _layout(n, px, margins, margin_frac)
    img = Image.new("RGBA", (px, px), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    radius = max(1, int(canvas.cell * 0.12))
    for r in range(n):
        for c in range(n):
            draw.rounded_rectangle(canvas.box(r, c, 0.04), radius=radius, fill=CELL_GREY)
    arr = np.array(img, dtype=np.uint8)
    arr.flags.writeable = False
    return arr


def draw_symbol(cv: Canvas, r: int, c: int, v: str) -> None:
    """Default cell drawing: digits and letters as bold text; VGRP's ``s`` as a dark filled square."""
    if v in (EMPTY, "", "e"):
        return
    if v == "s":
        cv.fill(r, c, (40, 40, 40), inset=0.12)
    else:
        cv.cell_text(r, c, v)


def render_image(puzzle: Puzzle, inst: Instance, grid: Grid | None = None, px: int = 800,
                 as_array: bool = True) -> Any:
    """Render ``grid`` (default: the initial board) with the instance's clues; HxWx3 uint8 or a PIL image."""
    cv = Canvas(inst.size, px, puzzle.margins, puzzle.margin_frac, puzzle.opaque_text)
    puzzle.decorate(cv, inst)
    g = inst.board if grid is None else grid
    draw_cell = getattr(puzzle, "draw_cell", None)
    for r in range(inst.size):
        for c in range(inst.size):
            v = g[r][c]
            if draw_cell is not None:
                draw_cell(cv, r, c, v, inst)
            else:
                draw_symbol(cv, r, c, v)
    return cv.to_array() if as_array else cv.image.convert("RGB")


def grid_text(g: Grid) -> str:
    """A board as rows of space-separated cells (``*`` = empty), rows in index order from 0."""
    width = max(len(x) for row in g for x in row)
    return "\n".join(" ".join(x.rjust(width) for x in row) for row in g)


def render_text(puzzle: Puzzle, inst: Instance, grid: Grid | None = None) -> str:
    """Text observation: board rows plus the puzzle's side clues (regions, counts, cages, ...)."""
    g = inst.board if grid is None else grid
    parts = [f"{puzzle.title} {inst.size}x{inst.size} (rows and columns indexed from 0; * = empty)", "Board:",
             grid_text(g)]
    extra = puzzle.clue_text(inst)
    if extra:
        parts.append(extra)
    return "\n".join(parts)


def region_text(reg: list[list[int]], name: str = "Regions") -> str:
    """Region ids as a grid (one id per cell)."""
    return f"{name} (cell -> id):\n" + grid_text([[str(x) for x in row] for row in reg])
