"""Small JPEG previews of image outputs, so a page of thousands of results stays light.

A thumbnail is named by the source file's content hash, so it is made once and reused by
every later gallery of the same folder; a file Pillow cannot read simply gets none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..files import safe_name

log = logging.getLogger("comfykit_batch.report.thumbs")

THUMBS = "thumbs"
SIZE = 256


def thumb_name(file: Mapping[str, Any], size: int = SIZE) -> str:
    """The thumbnail's path relative to the output folder (``thumbs/<hash>_<size>.jpg``)."""
    key = safe_name(str(file.get("sha256") or file.get("path") or "x"), 64)
    return f"{THUMBS}/{key}_{size}.jpg"


def make_thumb(source: Path, dest: Path, size: int = SIZE) -> bool:
    """Write a JPEG no larger than ``size`` px on its long side (never enlarged); False if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as im:
            im.draft("RGB", (size, size))  # JPEG sources decode at a reduced scale: much faster for big photos
            im.thumbnail((size, size))
            rgb = flatten(im)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            rgb.save(tmp, "JPEG", quality=82)
            os.replace(tmp, dest)
            return True
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.debug("no thumbnail for %s: %s", source, exc)
        return False


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
