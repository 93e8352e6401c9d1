"""Pillow drawing helpers shared by the grid: a font that needs no network, fitting text and images into boxes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

SYSTEM_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf")


@functools.lru_cache(maxsize=8)
def font(size: int) -> Any:
    """Pillow's own TrueType font (Pillow >= 10.1), else a system DejaVu, else Pillow's small bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # older Pillow or no FreeType
        for path in SYSTEM_FONTS:
            if Path(path).is_file():
                return ImageFont.truetype(path, size)
        return ImageFont.load_default()


def text_width(draw: Any, text: str, fnt: Any) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=fnt)
    return int(right - left)


def ellipsize(draw: Any, text: str, fnt: Any, width: int) -> str:
    """``text`` cut with an ellipsis so it fits ``width`` px."""
    if text_width(draw, text, fnt) <= width:
        return text
    while text and text_width(draw, text + "…", fnt) > width:
        text = text[:-1]
    return text + "…"


def wrap(draw: Any, text: str, fnt: Any, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines of ``width`` px (long words are cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if text_width(draw, trial, fnt) <= width:
            current = trial
            continue
        if current:
            lines.append(current)
        current = ellipsize(draw, word, fnt, width)
        if len(lines) == max_lines:
            break
    if current and len(lines) < max_lines:
        lines.append(current)
    if len(lines) == max_lines and " ".join(lines) != " ".join(text.split()):
        lines[-1] = ellipsize(draw, lines[-1] + " …", fnt, width)
    return lines


def fit_image(path: Path, box: int) -> Any:
    """The image scaled to fit a ``box`` x ``box`` square: small ones enlarged with hard pixel edges, big ones smoothed."""
    from PIL import Image

    from .thumbs import flatten

    with Image.open(path) as im:
        im.seek(0)
        rgb = flatten(im)
    scale = min(box / rgb.width, box / rgb.height)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    method = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return rgb.resize(size, method)
