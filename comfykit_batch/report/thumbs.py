"""Small JPEG previews of image outputs, so a page of thousands of results stays light.

A thumbnail is named by the source file's content hash, so it is made once and reused by
every later gallery of the same folder; a file Pillow cannot read simply gets none, and one too large
to decode gets a card saying so.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ComfyKitError
from ..files import safe_name
from .draw import placeholder

log = logging.getLogger("comfykit_batch.report.thumbs")

THUMBS = "thumbs"
SIZE = 256
MAX_DECODE_PIXELS = 90_000_000  # Pillow's own warning level (~9500 x 9500, ~270 MB as RGB)


def thumb_name(file: Mapping[str, Any], size: int = SIZE) -> str:
    """The thumbnail's path relative to the output folder (``thumbs/<hash>_<size>.jpg``)."""
    key = safe_name(str(file.get("sha256") or file.get("path") or "x"), 64)
    return f"{THUMBS}/{key}_{size}.jpg"


def make_thumb(source: Path, dest: Path, size: int = SIZE) -> bool:
    """Write a JPEG no larger than ``size`` px on its long side (never enlarged); False if unreadable.

    An image too large to decode gets a card saying so, so the gallery shows why there is no picture.
    """
    try:
        rgb = preview(source, size)
    except TooLargeError as exc:
        rgb = placeholder((size, size), str(exc))
    except unreadable() as exc:
        log.debug("no thumbnail for %s: %s", source, exc)
        return False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        rgb.save(tmp, "JPEG", quality=82)
        os.replace(tmp, dest)
    except OSError as exc:
        log.debug("no thumbnail for %s: %s", source, exc)
        return False
    return True


class TooLargeError(ComfyKitError, OSError):
    """An image with more pixels than ``MAX_DECODE_PIXELS`` even at the smallest scale its format decodes at."""


def unreadable() -> tuple[type[Exception], ...]:
    """What decoding a damaged, truncated or hostile image file raises (the file then simply has no preview)."""
    from PIL import Image

    return OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError


def preview(path: Path, box: int) -> Any:
    """The image as RGB, shrunk to fit a ``box`` x ``box`` square (never enlarged).

    A JPEG is decoded at a reduced scale (1/2 .. 1/8, ``draft``); an image still over ``MAX_DECODE_PIXELS``
    is not decoded at all (``TooLargeError`` names its size) rather than taking gigabytes of memory.
    """
    with _opened(path) as im:
        width, height = im.size
        im.draft("RGB", (box, box))
        if im.width * im.height > MAX_DECODE_PIXELS:
            raise TooLargeError(f"too large to preview: {width}x{height}")
        im.thumbnail((box, box))
        return flatten(im)


def fit_image(path: Path, box: int) -> Any:
    """The image scaled to fit a ``box`` x ``box`` square: small ones enlarged with hard pixel edges, big ones smoothed."""
    from PIL import Image

    rgb = preview(path, box)
    scale = min(box / rgb.width, box / rgb.height)
    if scale <= 1:
        return rgb
    return rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.NEAREST)


@contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """``Image.open`` without its refusal of very large images, which comes before anything can be read or reduced.

    Pillow's format plugins are asked in turn, as ``Image.open`` does; they read only the header here, and
    ``preview`` checks the size itself once it knows how small the decode can be.
    """
    from PIL import Image, UnidentifiedImageError

    Image.init()
    with path.open("rb") as fp:
        prefix = fp.read(16)
        for fmt in list(Image.ID):
            factory, accept = Image.OPEN[fmt]
            verdict = accept(prefix) if accept else True
            if not verdict or isinstance(verdict, str):  # a text is a reason not to try this format
                continue
            fp.seek(0)
            try:
                im = factory(fp, str(path))
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
            try:
                yield im
            finally:
                im.close()
            return
    raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}")


def flatten(im: Any) -> Any:
    """An RGB copy of any Pillow image, transparent parts on white."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        base = Image.new("RGB", rgba.size, (255, 255, 255))
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    return im.convert("RGB")


def ensure_thumbs(root: Path, records: Iterable[Mapping[str, Any]], size: int = SIZE) -> dict[str, str]:
    """Thumbnails for every image file of the records: ``{file path: thumb path}`` (both relative to root)."""
    made: dict[str, str] = {}
    for rec in records:
        for f in rec.get("files") or []:
            if f.get("kind") != "image" or not f.get("path"):
                continue
            rel = thumb_name(f, size)
            dest = root / rel
            if dest.is_file() or make_thumb(root / f["path"], dest, size):
                made[f["path"]] = rel
    return made
