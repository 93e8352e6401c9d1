"""Small JPEG previews of image outputs, so a page of thousands of results stays light.

A thumbnail is named by the source file's content hash, so it is made once and reused by
every later gallery of the same folder; a file Pillow cannot read simply gets none, and one too large
to decode gets a card saying so. During a run ``thumb_lane.ThumbLane`` makes them as the files land;
what it missed is made here, over every core (``make_missing``).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

#: ``(done, total)`` after each thumbnail, in the caller's thread (the command line draws its progress line from it)
Progress = Callable[[int, int], None]
#: ``make_thumb``'s shape: a test or a benchmark may pass another maker
Maker = Callable[[Path, Path, int], bool]


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
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{threading.get_ident()}.part")  # two makers of one thumbnail never meet
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


def image_files(record: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The record's image files that have a path inside the output folder (an edited index cannot point elsewhere)."""
    for f in record.get("files") or []:
        path = str(f.get("path") or "")
        if f.get("kind") == "image" and path and not Path(path).is_absolute() and ".." not in Path(path).parts:
            yield f


def ensure_thumbs(root: Path, records: Iterable[Mapping[str, Any]], size: int = SIZE, *, workers: int | None = None,
                  on_progress: Progress | None = None) -> dict[str, str]:
    """Thumbnails for every image file of the records: ``{file path: thumb path}`` (both relative to root).

    Existing ones (made by the run's lane or an earlier gallery) are reused; the rest are made in parallel.
    """
    entries = [(str(f["path"]), thumb_name(f, size)) for rec in records for f in image_files(rec)]
    ok = make_missing([(root / path, root / rel) for path, rel in entries], size=size, workers=workers, on_progress=on_progress)
    return {path: rel for (path, rel), good in zip(entries, ok, strict=True) if good}


def make_missing(pairs: Sequence[tuple[Path, Path]], *, size: int = SIZE, workers: int | None = None,
                 on_progress: Progress | None = None, make: Maker = make_thumb) -> list[bool]:
    """Make each ``(source, thumbnail)`` pair's thumbnail unless it exists; per pair, whether it exists now.

    Threads, not processes: Pillow lets go of the GIL while it inflates, resizes and encodes, so two
    threads made 1024 px PNG thumbnails as fast as two processes on a 2-core machine, without a
    process pool's start-up. A thumbnail two pairs share (same content) is made once.
    """
    have: dict[Path, bool] = {}
    todo: list[tuple[Path, Path]] = []
    for source, dest in pairs:
        if dest not in have:
            have[dest] = dest.is_file()
            if not have[dest]:
                todo.append((source, dest))
    for (_, dest), made in zip(todo, _run_all(todo, size, workers or os.cpu_count() or 1, on_progress, make), strict=True):
        have[dest] = made
    return [have[dest] for _, dest in pairs]


def _run_all(todo: Sequence[tuple[Path, Path]], size: int, workers: int, on_progress: Progress | None,
             make: Maker) -> Iterator[bool]:
    """``make`` over ``todo`` on ``workers`` threads, in order, with at most a few per worker waiting (a million stay cheap)."""
    window: list[Future[bool]] = []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="comfykit-thumbs") as pool:
        items = iter(todo)
        for done in range(1, len(todo) + 1):
            while len(window) < 4 * workers and (item := next(items, None)) is not None:
                window.append(pool.submit(_make_quietly, make, item[0], item[1], size))
            made = window.pop(0).result()
            if on_progress is not None:
                on_progress(done, len(todo))
            yield made


def _make_quietly(make: Maker, source: Path, dest: Path, size: int) -> bool:
    """``make``, with anything it raises logged as no thumbnail: one bad file never stops the others."""
    try:
        return make(source, dest, size)
    except Exception as exc:  # noqa: BLE001 - a thumbnail is optional; the page shows the file without one
        log.debug("no thumbnail for %s: %s", source, exc)
        return False
