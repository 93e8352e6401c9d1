"""Pillow drawing helpers shared by the grid and the thumbnails: fonts with the glyphs a label needs, fitting text into boxes.

Parameter values are written in any language, and Pillow's own font has Latin letters only (not even ``é``),
so each character is drawn in the first of several fonts that has its glyph: an explicit ``--font``, then
common system fonts (DejaVu for Latin, Greek, Cyrillic, Hebrew, Arabic; Noto CJK for Chinese, Japanese, Korean),
then whatever ``fc-match`` offers for a character none of them has, then Pillow's own font. A text is drawn in
runs of one font each; the helpers below measure and cut texts through a ``Face``, never a single font.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import UsageError

ELLIPSIS = "…"
#: where systems keep fonts (searched at run time; nothing is downloaded)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts", "/Library/Fonts",
             "~/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")
#: font files worth using, best first: wide coverage first, then CJK, then what Windows and macOS ship
FONT_FILES = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf",
              "NotoSansHebrew-Regular.ttf", "NotoSansArabic-Regular.ttf", "FreeSans.ttf", "LiberationSans-Regular.ttf",
              "Arial Unicode.ttf", "arial.ttf", "Arial.ttf", "msyh.ttc", "PingFang.ttc", "Hiragino Sans GB.ttc")
NOTDEF_PROBE = "\U0010ffff"  # a noncharacter no font maps: it draws as the font's missing-glyph box
FC_MATCH_MAX = 16  # fc-match questions per process: a label of many rare characters must not fork hundreds of times
_fc_asked: set[str] = set()


@functools.lru_cache(maxsize=1)
def system_fonts() -> tuple[str, ...]:
    """The ``FONT_FILES`` found in the standard font folders, in ``FONT_FILES`` order (searched once per process)."""
    wanted = {name.lower(): rank for rank, name in enumerate(FONT_FILES)}
    found: dict[int, str] = {}
    for folder in FONT_DIRS:
        for dirpath, _, files in os.walk(os.path.expanduser(folder)):
            for name in files:
                rank = wanted.get(name.lower())
                if rank is not None:
                    found.setdefault(rank, os.path.join(dirpath, name))
    return tuple(path for _, path in sorted(found.items()))


def load_font(path: str, size: int, option: str = "--font") -> Any:
    """A TrueType/OpenType font file at ``size`` px; an unreadable one is a one-line ``UsageError``."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option} {path}: not a font file Pillow can read ({exc}); expected a .ttf, .otf or .ttc file") from None


class Face:
    """One text size and the fonts to draw it with, best first: each character goes to the first font that has it."""

    def __init__(self, size: int, paths: tuple[str, ...]) -> None:
        self.size = size
        self.fonts: list[Any] = [f for f in (_try_font(p, size) for p in paths) if f is not None] + [_default_font(size)]
        self.ascent = self.fonts[0].getmetrics()[0] if _is_truetype(self.fonts[0]) else 0
        self._font_of: dict[str, Any] = {}
        self._glyphs: dict[tuple[int, str], bool] = {}

    def font_for(self, char: str) -> Any:
        """The first font with ``char``'s glyph (``fc-match`` is asked when none has it), else the first font."""
        if char not in self._font_of:
            found = next((f for f in self.fonts if self.has(f, char)), None)
            extra = None if found is not None else _try_font(fc_match(char), self.size)
            if extra is not None and has_glyph(extra, char):
                self.fonts.insert(len(self.fonts) - 1, extra)
                found = extra
            self._font_of[char] = found if found is not None else self.fonts[0]
        return self._font_of[char]

    def runs(self, text: str) -> list[tuple[str, Any]]:
        """``text`` cut where the font changes; spaces and marks stay in the run they are in.

        Line breaks and other control characters become spaces: every text here is drawn on one line.
        """
        out: list[tuple[str, Any]] = []
        for char in (c if c.isprintable() else " " for c in text):
            keep = out and (char == " " or self.has(out[-1][1], char) and not char.isalnum())
            fnt = out[-1][1] if keep else self.font_for(char)
            if out and out[-1][1] is fnt:
                out[-1] = (out[-1][0] + char, fnt)
            else:
                out.append((char, fnt))
        return out

    def has(self, fnt: Any, char: str) -> bool:
        """``has_glyph``, remembered."""
        key = (id(fnt), char)
        if key not in self._glyphs:
            self._glyphs[key] = has_glyph(fnt, char)
        return self._glyphs[key]

    def width(self, draw: Any, text: str) -> int:
        return round(sum(draw.textlength(part, font=fnt) for part, fnt in self.runs(text)))

    def draw(self, canvas: Any, at: tuple[int, int], text: str, fill: tuple[int, int, int]) -> None:
        """``text`` with its top-left at ``at``, run by run on one baseline."""
        x, y = at
        for part, fnt in self.runs(text):
            if _is_truetype(fnt):
                canvas.text((x, y + self.ascent), part, fill=fill, font=fnt, anchor="ls")
            else:  # Pillow's bitmap font (no FreeType) has no anchors
                canvas.text((x, y), part, fill=fill, font=fnt)
            x += canvas.textlength(part, font=fnt)


def _is_truetype(fnt: Any) -> bool:
    from PIL import ImageFont

    return isinstance(fnt, ImageFont.FreeTypeFont)


@functools.lru_cache(maxsize=16)
def face(size: int, font: str | None = None) -> Face:
    """The fonts for ``size`` px text: ``font`` (checked: a bad one is a ``UsageError``) first, then the system's."""
    if font is not None:
        load_font(font, size)
    return Face(size, ((font,) if font else ()) + system_fonts())


def has_glyph(fnt: Any, char: str) -> bool:
    """Whether the font draws ``char`` as itself, not as its missing-glyph box (which is what it draws for a noncharacter)."""
    mask, notdef = fnt.getmask(char), fnt.getmask(NOTDEF_PROBE)
    return bool(mask.size != notdef.size or bytes(mask) != bytes(notdef))


def fc_match(char: str) -> str | None:
    """The font file fontconfig suggests for one character, if ``fc-match`` is installed (asked a few times at most)."""
    exe = shutil.which("fc-match")
    if exe is None or char in _fc_asked or len(_fc_asked) >= FC_MATCH_MAX:
        return None
    _fc_asked.add(char)
    try:
        done = subprocess.run([exe, "-f", "%{file}", f":charset={ord(char):x}"], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _try_font(path: str | None, size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size) if path else None
    except (OSError, ValueError):
        return None


def _default_font(size: int) -> Any:
    """Pillow's own font: TrueType (Latin only) with FreeType, else its small bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # no FreeType
        return ImageFont.load_default()


def text_width(draw: Any, text: str, fonts: Face) -> int:
    return fonts.width(draw, text)


def _longest(draw: Any, fonts: Face, width: int, make: Callable[[int], str], most: int) -> int:
    """The largest ``n <= most`` whose ``make(n)`` fits ``width`` px (0 if none), by bisection: long labels stay fast."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_width(draw, make(mid), fonts) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _prefix(draw: Any, fonts: Face, width: int, text: str, suffix: str = "") -> int:
    """How many leading characters of ``text`` fit ``width`` px with ``suffix`` after them."""
    return _longest(draw, fonts, width, lambda k: text[:k] + suffix, len(text))


def ellipsize(draw: Any, text: str, fonts: Face, width: int) -> str:
    """``text`` cut at the end with an ellipsis so it fits ``width`` px."""
    if text_width(draw, text, fonts) <= width:
        return text
    return text[:_prefix(draw, fonts, width, text, ELLIPSIS)] + ELLIPSIS


def ellipsize_middle(draw: Any, text: str, fonts: Face, width: int) -> str:
    """``text`` with its middle replaced by an ellipsis so it fits ``width`` px: both ends of a value stay readable."""
    if text_width(draw, text, fonts) <= width:
        return text

    def keep(k: int) -> str:
        return text[: (k + 1) // 2] + ELLIPSIS + text[len(text) - k // 2:]

    return keep(_longest(draw, fonts, width, keep, len(text) - 1))


def fit_label(draw: Any, name: str, value: str, fonts: Face, width: int) -> str:
    """``name = value`` in ``width`` px, keeping the value: the name is shortened first, then dropped, then the value's middle."""
    full = f"{name} = {value}"
    if text_width(draw, full, fonts) <= width:
        return full
    n = _prefix(draw, fonts, width, name[:-1], f"{ELLIPSIS} = {value}")
    return f"{name[:n]}{ELLIPSIS} = {value}" if n else ellipsize_middle(draw, value, fonts, width)


def _lines(draw: Any, text: str, fonts: Face, width: int) -> Iterator[str]:
    """Greedy word wrap; a word wider than a line (or a script written without spaces) breaks between characters."""
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if text_width(draw, trial, fonts) <= width:
            current = trial
            continue
        if current:
            yield current
        while len(word) > 1 and text_width(draw, word, fonts) > width:
            n = max(1, _prefix(draw, fonts, width, word))
            yield word[:n]
            word = word[n:]
        current = word
    if current:
        yield current


def wrap(draw: Any, text: str, fonts: Face, width: int, max_lines: int) -> list[str]:
    """``text`` in at most ``max_lines`` lines of ``width`` px; when some is left over the last line ends in an ellipsis."""
    lines = list(itertools.islice(_lines(draw, text, fonts, width), max_lines + 1))
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        lines[max_lines - 1:] = [last[:_prefix(draw, fonts, width, last, ELLIPSIS)].rstrip() + ELLIPSIS]
    return lines


def label_lines(draw: Any, name: str, value: str, fonts: Face, width: int, max_lines: int) -> list[str]:
    """A row label: ``name = value`` wrapped when it fits whole, else the value alone (the title names the axis)."""
    lines = list(itertools.islice(_lines(draw, f"{name} = {value}", fonts, width), max_lines + 1))
    if len(lines) <= max_lines:
        return lines
    return [fit_label(draw, name, value, fonts, width)] if max_lines == 1 else wrap(draw, value, fonts, width, max_lines)


def placeholder(size: tuple[int, int], text: str, *, background: tuple[int, int, int] = (236, 236, 236),
                ink: tuple[int, int, int] = (110, 110, 110)) -> Any:
    """A grey card that says why there is no picture (``too large to preview: 30000x30000``)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, background)
    canvas = ImageDraw.Draw(image)
    canvas.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=ink, width=2)
    fsize = max(9, min(18, min(size) // 12))
    fonts = face(fsize)
    lines = wrap(canvas, text, fonts, size[0] - 12, max(1, (size[1] - 12) // (fsize + 3)))
    top = (size[1] - len(lines) * (fsize + 3)) // 2
    for i, line in enumerate(lines):
        fonts.draw(canvas, ((size[0] - text_width(canvas, line, fonts)) // 2, top + i * (fsize + 3)), line, ink)
    return image
