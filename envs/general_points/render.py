"""Image and text rendering of General Points hands (the VL variant of arXiv 2501.17161 shows the cards).

Cards are drawn procedurally with PIL (white rounded card, rank in the corners, suit shape in the centre; red
hearts/diamonds, black spades/clubs) and cached per (rank, suit, card width); a hand image is the cards side by
side on a green table.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from envs.general_points.cards import Card, CardValues, Hand, rank_label

DEFAULT_CARD_WIDTH = 120
_TABLE = (30, 110, 60)
_RED, _BLACK = (200, 30, 40), (20, 20, 20)


def _suit_shape(draw: ImageDraw.ImageDraw, suit: str, cx: float, cy: float, r: float) -> None:
    color = _RED if suit in ("hearts", "diamonds") else _BLACK
    if suit == "diamonds":
        draw.polygon([(cx, cy - r), (cx + 0.75 * r, cy), (cx, cy + r), (cx - 0.75 * r, cy)], fill=color)
    elif suit == "hearts":
        q = r / 2
        draw.ellipse([cx - r, cy - r, cx, cy - r + 2 * q + 2], fill=color)
        draw.ellipse([cx, cy - r, cx + r, cy - r + 2 * q + 2], fill=color)
        draw.polygon([(cx - r, cy - q / 2), (cx + r, cy - q / 2), (cx, cy + r)], fill=color)
    elif suit == "spades":
        q = r / 2
        draw.polygon([(cx, cy - r), (cx + r, cy + q / 2), (cx - r, cy + q / 2)], fill=color)
        draw.ellipse([cx - r, cy - q / 2, cx, cy + q * 1.2], fill=color)
        draw.ellipse([cx, cy - q / 2, cx + r, cy + q * 1.2], fill=color)
        draw.polygon([(cx, cy), (cx + q, cy + r), (cx - q, cy + r)], fill=color)
    elif suit == "clubs":
        q = r * 0.48
        for dx, dy in ((0, -r + q), (-r + q, q * 0.3), (r - q, q * 0.3)):
            draw.ellipse([cx + dx - q, cy + dy - q, cx + dx + q, cy + dy + q], fill=color)
        draw.polygon([(cx, cy), (cx + q * 0.8, cy + r), (cx - q * 0.8, cy + r)], fill=color)
    else:
        raise ValueError(f"suit={suit!r}; expected spades, hearts, diamonds or clubs")


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=512)
def card_tile(rank: int, suit: str, width: int = DEFAULT_CARD_WIDTH) -> np.ndarray:
    """One card as a ``(1.4*width, width, 3)`` uint8 image (cached)."""
    if width < 24:
        raise ValueError(f"card width={width}: expected >= 24 px")
    height = int(round(width * 1.4))
    img = Image.new("RGB", (width, height), _TABLE)
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle([1, 1, width - 2, height - 2], radius=width // 10, fill=(252, 252, 248),
                           outline=(90, 90, 90), width=max(1, width // 60))
    color = _RED if suit in ("hearts", "diamonds") else _BLACK
    label = rank_label(rank)
    font = _font(max(10, width // 4))
    draw.text((width * 0.08, height * 0.04), label, fill=color, font=font)
    tw = draw.textlength(label, font=font)
    draw.text((width * 0.92 - tw, height * 0.76), label, fill=color, font=font)
    _suit_shape(draw, suit, width / 2, height / 2, width * 0.2)
    out = np.asarray(img, dtype=np.uint8)
    out.setflags(write=False)
    return out


def render_cards(cards: Sequence[Card], card_width: int = DEFAULT_CARD_WIDTH) -> np.ndarray:
    """The hand as one image: cards side by side with margins on a green table."""
    if not cards:
        raise ValueError("render_cards needs at least one card")
    gap = max(4, card_width // 8)
    tiles = [card_tile(c.rank, c.suit, card_width) for c in cards]
    h, w = tiles[0].shape[:2]
    canvas = np.empty((h + 2 * gap, len(tiles) * (w + gap) + gap, 3), dtype=np.uint8)
    canvas[:] = _TABLE
    for k, tile in enumerate(tiles):
        x = gap + k * (w + gap)
        canvas[gap:gap + h, x:x + w] = tile
    return canvas


def render_hand_text(hand: Hand, values: CardValues | None = None) -> str:
    """Text observation: the card labels and the target (the values rule is stated by the prompt)."""
    text = f"Cards: {hand.labels}\nTarget: {hand.target}"
    if values is not None:
        text += f"\nRule: {values.describe()}"
    return text
