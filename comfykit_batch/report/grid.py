"""The XY grid image: one output per cell, column and row labels, failures drawn where they happened.

Axis values appear in sweep order (the order of the records). A cell holding several jobs
(parameters other than the axes still vary) shows them side by side, up to ``MAX_PER_CELL``;
a third axis makes one file per value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import safe_name
from . import draw as d
from .index import Results, failure_reason, key_of, label_of, load_results, parse_where, select

log = logging.getLogger("comfykit_batch.report.grid")

MAX_PER_CELL = 8
MAX_PIXELS = 64_000_000  # ~190 MB of RGB while drawing; bigger grids get smaller cells
PAD = 8
GAP = 4
BG = (255, 255, 255)
INK = (20, 20, 20)
FAILED_BG = (253, 232, 232)
FAILED_INK = (190, 30, 30)
MISSING_BG = (236, 236, 236)
MISSING_INK = (110, 110, 110)


@dataclass(frozen=True)
class Item:
    """What one slot of a cell shows: an image file, a text, or an empty slot with its reason."""

    kind: str  # "image" | "text" | "failed" | "missing"
    value: str  # file path (relative to the output folder) or the text to draw


def make_grid(output_dir: str | Path, x: str, y: str | None = None, *, z: str | None = None, var: str | None = None,
              where: Mapping[str, Any] | Sequence[str] | None = None, out: str | Path | None = None,
              cell: int = 256) -> list[Path]:
    """Draw the grid(s) of an output folder; returns the PNG files written (one per ``z`` value).

    ``where`` is ``{param: value}`` or ``["param=value", ...]``; ``out`` defaults to ``<output>/grid.png``.
    """
    results = load_results(output_dir)
    for option, name in (("--x", x), ("--y", y), ("--z", z)):
        if name is not None:
            results.check_param(name, option)
    if cell < 16:
        raise UsageError(f"cell size {cell}: expected at least 16 px")
    if isinstance(where, str):
        where = [where]
    wanted: dict[str, Any] = dict(where) if isinstance(where, Mapping) else dict(parse_where(where))
    records = select(results, wanted)
    if not records:
        raise UsageError(f"no job in {results.root} matches {_where_text(wanted)}")
    var = var or _default_var(results, records)
    target = Path(out) if out else results.root / "grid.png"
    pages = results.values(z, records) if z else [None]
    written = []
    for zv in pages:
        subset = [r for r in records if z is None or key_of((r.get("params") or {}).get(z)) == key_of(zv)]
        title = _title(results, x, y, var, wanted, z, zv)
        image = render(results, subset, x, y, var, title, cell, columns=results.values(x, records),
                       rows=results.values(y, records) if y else [None])
        path = target if z is None else target.with_name(f"{target.stem}_{safe_name(z)}-{safe_name(label_of(zv))}{target.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, "PNG", optimize=True)
        written.append(path)
    return written


def _default_var(results: Results, records: list[dict[str, Any]]) -> str:
    """The first image output of the records, else the first output of any kind."""
    any_var = None
    for rec in records:
        for f in rec.get("files") or []:
            if f.get("kind") == "image":
                return str(f["var"])
            any_var = any_var or f.get("var")
        any_var = any_var or next(iter(rec.get("texts") or {}), None)
    if any_var:
        return str(any_var)
    if any(rec.get("status") != "completed" for rec in records):
        return "output"  # only failures so far: still worth a grid of their reasons
    raise UsageError(f"{results.root}: no job has an output file yet, so there is nothing to draw")


def _where_text(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={label_of(v)}" for k, v in where.items()) or "(all)"


def _title(results: Results, x: str, y: str | None, var: str, where: Mapping[str, Any], z: str | None, zv: Any) -> str:
    parts = [f"{results.name}: {var}", f"x = {x}"] + ([f"y = {y}"] if y else [])
    if z:
        parts.append(f"{z} = {label_of(zv)}")
    if where:
        parts.append(f"where {_where_text(where)}")
    return ", ".join(parts)


def cell_items(records: list[dict[str, Any]], var: str) -> list[Item]:
    """What a cell shows for its jobs, in sweep order."""
    if not records:
        return [Item("missing", "no job")]
    items: list[Item] = []
    for rec in records:
        if rec.get("status") != "completed":
            items.append(Item("failed", f"failed: {failure_reason(rec)}"))
            continue
        files = [f for f in rec.get("files") or [] if f.get("var") == var]
        texts = (rec.get("texts") or {}).get(var) or []
        found = [Item("image", f["path"]) for f in files if f.get("kind") == "image"]
        found += [Item("text", str(t)) for t in texts]
        found += [Item("missing", f"{f.get('kind')} file: {Path(f['path']).name}") for f in files if f.get("kind") != "image"]
        items.extend(found or [Item("missing", f"no '{var}' output")])
    return items


def render(results: Results, records: list[dict[str, Any]], x: str, y: str | None, var: str, title: str, cell: int,
           *, columns: list[Any], rows: list[Any]) -> Any:
    """One grid image: a title, column labels, row labels, and the cells."""
    from PIL import Image, ImageDraw

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        p = rec.get("params") or {}
        groups.setdefault((key_of(p.get(x)), key_of(p.get(y)) if y else "null"), []).append(rec)
    cells = {(ci, ri): cell_items(groups.get((key_of(cv), key_of(rv)), []), var)
             for ci, cv in enumerate(columns) for ri, rv in enumerate(rows)}
    per = min(MAX_PER_CELL, max(len(v) for v in cells.values()))
    fitted = int((MAX_PIXELS / (len(columns) * per * len(rows))) ** 0.5)
    if fitted < cell:
        if fitted < 16:
            raise UsageError(f"a {len(columns)} x {len(rows)} grid with {per} images per cell is too big for one image; "
                             "narrow it with --where or split it with --z")
        log.info("cells shrunk from %d to %d px to keep the grid under %d pixels", cell, fitted, MAX_PIXELS)
        cell = fitted
    cell_w = per * cell + (per - 1) * GAP
    fsize = max(12, min(18, cell // 10))
    fnt, small = d.font(fsize), d.font(max(9, fsize - 3))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_labels = [f"{y} = {label_of(v)}" if y else "" for v in rows]
    left = min(260, max(d.text_width(probe, t, fnt) for t in row_labels) + 2 * PAD) if y else PAD
    top = 2 * fsize + 3 * PAD + fsize
    width = left + len(columns) * (cell_w + PAD) + PAD
    height = top + len(rows) * (cell + PAD) + PAD
    image = Image.new("RGB", (max(width, d.text_width(probe, title, fnt) + 2 * PAD), height), BG)
    canvas = ImageDraw.Draw(image)
    canvas.text((PAD, PAD), title, fill=INK, font=fnt)
    for ci, cv in enumerate(columns):
        cx = left + ci * (cell_w + PAD)
        text = d.ellipsize(canvas, f"{x} = {label_of(cv)}", fnt, cell_w)
        canvas.text((cx + (cell_w - d.text_width(canvas, text, fnt)) // 2, top - fsize - PAD), text, fill=INK, font=fnt)
    for ri, label in enumerate(row_labels):
        cy = top + ri * (cell + PAD)
        lines = d.wrap(canvas, label, fnt, left - 2 * PAD, max(1, cell // (fsize + 4)))
        cy += (cell - len(lines) * (fsize + 4)) // 2  # centred on its row
        for li, line in enumerate(lines):
            canvas.text((PAD, cy + li * (fsize + 4)), line, fill=INK, font=fnt)
    for (ci, ri), items in cells.items():
        ox, oy = left + ci * (cell_w + PAD), top + ri * (cell + PAD)
        for si, item in enumerate(items[:per]):
            _draw_item(image, canvas, item, (ox + si * (cell + GAP), oy), cell, small, results.root)
        if len(items) > per:
            canvas.text((ox + 4, oy + cell - fsize - 4), f"+{len(items) - per} more", fill=FAILED_INK, font=small)
    return image


def _draw_item(image: Any, canvas: Any, item: Item, at: tuple[int, int], cell: int, fnt: Any, root: Path) -> None:
    x0, y0 = at
    box = (x0, y0, x0 + cell - 1, y0 + cell - 1)
    if item.kind == "image":
        try:
            pic = d.fit_image(root / item.value, cell)
            image.paste(pic, (x0 + (cell - pic.width) // 2, y0 + (cell - pic.height) // 2))
            return
        except OSError as exc:
            item = Item("missing", f"unreadable {Path(item.value).name}: {exc}")
    if item.kind == "text":
        canvas.rectangle(box, fill=BG, outline=(200, 200, 200))
        _text_block(canvas, item.value, box, fnt, INK)
        return
    failed = item.kind == "failed"
    canvas.rectangle(box, fill=FAILED_BG if failed else MISSING_BG, outline=FAILED_INK if failed else MISSING_INK, width=2)
    ink = FAILED_INK if failed else MISSING_INK
    canvas.line((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=ink, width=1)
    canvas.line((x0, y0 + cell - 1, x0 + cell - 1, y0), fill=ink, width=1)
    _text_block(canvas, item.value, box, fnt, ink, background=FAILED_BG if failed else MISSING_BG)


def _text_block(canvas: Any, text: str, box: tuple[int, int, int, int], fnt: Any, ink: tuple[int, int, int],
                background: tuple[int, int, int] | None = None) -> None:
    x0, y0, x1, y1 = box
    size = getattr(fnt, "size", 11)
    lines = d.wrap(canvas, text, fnt, x1 - x0 - 8, max(1, (y1 - y0 - 8) // (size + 3)))
    for i, line in enumerate(lines):
        at = (x0 + 4, y0 + 4 + i * (size + 3))
        if background:
            canvas.rectangle((at[0] - 1, at[1], at[0] + d.text_width(canvas, line, fnt) + 1, at[1] + size + 2), fill=background)
        canvas.text(at, line, fill=ink, font=fnt)
