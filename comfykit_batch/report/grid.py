"""The XY grid image: one output per cell, column and row labels, failures drawn where they happened.

Axis values appear in sweep order (the order of the records). A cell holding several jobs
(parameters other than the axes still vary) shows them side by side, up to ``MAX_PER_CELL``;
a third axis makes one file per value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import safe_name
from . import draw as d
from .index import Results, failure_reason, key_of, label_of, load_results, parse_where, select
from .names import Namer
from .thumbs import TooLargeError, fit_image, unreadable

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
TITLE_MAX = 1200  # px a title may widen a narrow grid to; past that it is ellipsised
ROW_LABEL_MAX = 260  # px of the row label area at most; longer labels wrap, then are ellipsised
VALUE_CHARS = 60  # characters of one value in the title before its middle is cut


@dataclass(frozen=True)
class Item:
    """What one slot of a cell shows: an image file, a text, or an empty slot with its reason."""

    kind: str  # "image" | "text" | "failed" | "missing"
    value: str  # file path (relative to the output folder) or the text to draw


def make_grid(output_dir: str | Path, x: str, y: str | None = None, *, z: str | None = None, var: str | None = None,
              where: Mapping[str, Any] | Sequence[str] | None = None, out: str | Path | None = None,
              cell: int = 256, font: str | None = None) -> list[Path]:
    """Draw the grid(s) of an output folder; returns the PNG files written (one per ``z`` value).

    ``where`` is ``{param: value}`` or ``["param=value", ...]``; ``out`` defaults to ``<output>/grid.png`` (what the
    manifest's ``report:`` block draws; the ``grid`` command names its own by the axes, ``default_name``). ``font``
    is a font file tried first for every label (system fonts and Pillow's own cover what it lacks).
    """
    results = load_results(output_dir)
    _check_axes(results, x, y, z)
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
    d.face(12, font)  # a bad --font fails here, before anything is drawn
    pages = results.values(z, records) if z else [None]
    names = Namer()
    written = []
    for zv in pages:
        subset = [r for r in records if z is None or key_of((r.get("params") or {}).get(z)) == key_of(zv)]
        title = _title(results, x, y, var, wanted, z, zv)
        image = render(results, subset, x, y, var, title, cell, columns=results.values(x, records),
                       rows=results.values(y, records) if y else [None], font=font)
        path = target if z is None else _page_path(target, names, z, zv)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, "PNG", optimize=True)
        written.append(path)
    return written


def default_name(x: str, y: str | None) -> str:
    """The ``grid`` command's file name without ``-o``: by its axes, so it never replaces the run's ``grid.png``."""
    return f"grid_{safe_name(x)}" + (f"_by_{safe_name(y)}" if y else "") + ".png"


def _check_axes(results: Results, x: str, y: str | None, z: str | None) -> None:
    """Each axis a known parameter, and no parameter on two axes (it would fill only a diagonal)."""
    axes = [("--x", x), ("--y", y), ("--z", z)]
    for option, name in axes:
        if name is not None:
            results.check_param(name, option)
    for i, (option, name) in enumerate(axes):
        for other, same in axes[i + 1:]:
            if name is not None and name == same:
                raise UsageError(f"{option} and {other} are both '{name}': expected a different parameter on each axis")


def _page_path(target: Path, names: Namer, z: str, value: Any) -> Path:
    """One ``--z`` page's file: ``<stem>_<z>-<value><suffix>``, numbered when two values sanitise alike (``red fox``, ``red/fox``)."""
    return target.with_name(f"{target.stem}_{names.name(f'{safe_name(z)}-{safe_name(label_of(value))}', '')}{target.suffix}")


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
    return ", ".join(f"{k}={_short(label_of(v))}" for k, v in where.items()) or "(all)"


def _short(text: str) -> str:
    """A value for a title or a message: a long one (a prompt) cut in its middle, so what follows stays readable."""
    return text if len(text) <= VALUE_CHARS else f"{text[:VALUE_CHARS * 2 // 3]}{d.ELLIPSIS}{text[-(VALUE_CHARS // 3):]}"


def _title(results: Results, x: str, y: str | None, var: str, where: Mapping[str, Any], z: str | None, zv: Any) -> str:
    parts = [f"{results.name}: {var}", f"x = {x}"] + ([f"y = {y}"] if y else [])
    if z:
        parts.append(f"{z} = {_short(label_of(zv))}")
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


@dataclass(frozen=True)
class Layout:
    """Where everything goes: cell size, slots per cell, label font size, the label areas and the image size."""

    cell: int
    per: int
    fsize: int
    left: int
    top: int
    width: int
    height: int

    @property
    def cell_w(self) -> int:
        return self.per * self.cell + (self.per - 1) * GAP


def render(results: Results, records: list[dict[str, Any]], x: str, y: str | None, var: str, title: str, cell: int,
           *, columns: list[Any], rows: list[Any], font: str | None = None) -> Any:
    """One grid image: a title, column labels, row labels, and the cells."""
    from PIL import Image, ImageDraw

    cells = _cells(records, x, y, var, columns, rows)
    per = min(MAX_PER_CELL, max(len(v) for v in cells.values()))
    cell = _fit_cell(cell, len(columns), len(rows), per)
    fsize = max(12, min(18, cell // 10))
    face, small = d.face(fsize, font), d.face(max(9, fsize - 3), font)
    row_labels = [label_of(v) for v in rows]
    plan, title = _layout(face, Layout(cell, per, fsize, left=PAD, top=3 * fsize + 3 * PAD, width=0, height=0),
                          title, (len(columns), len(rows)), [f"{y} = {v}" for v in row_labels] if y else [])
    image = Image.new("RGB", (plan.width, plan.height), BG)
    canvas = ImageDraw.Draw(image)
    face.draw(canvas, (PAD, PAD), title, INK)
    _column_labels(canvas, plan, face, x, [label_of(v) for v in columns])
    if y:
        _row_labels(canvas, plan, face, y, row_labels)
    for (ci, ri), items in cells.items():
        ox, oy = plan.left + ci * (plan.cell_w + PAD), plan.top + ri * (cell + PAD)
        for si, item in enumerate(items[:per]):
            _draw_item(image, canvas, item, (ox + si * (cell + GAP), oy), cell, small, results.root)
        if len(items) > per:
            small.draw(canvas, (ox + 4, oy + cell - fsize - 4), f"+{len(items) - per} more", FAILED_INK)
    return image


def _layout(face: d.Face, plan: Layout, title: str, shape: tuple[int, int], row_labels: list[str]) -> tuple[Layout, str]:
    """The label area and image size: row labels up to ``ROW_LABEL_MAX`` px, the title cut past ``TITLE_MAX`` px
    (or the grid's width, if wider), so no label can make the image wider than that."""
    from PIL import Image, ImageDraw

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    if row_labels:
        plan = replace(plan, left=min(ROW_LABEL_MAX, max(d.text_width(probe, t, face) for t in row_labels) + 2 * PAD))
    grid_w = plan.left + shape[0] * (plan.cell_w + PAD) + PAD
    title = d.ellipsize(probe, title, face, max(grid_w, TITLE_MAX) - 2 * PAD)
    width = max(grid_w, d.text_width(probe, title, face) + 2 * PAD)
    return replace(plan, width=width, height=plan.top + shape[1] * (plan.cell + PAD) + PAD), title


def _cells(records: list[dict[str, Any]], x: str, y: str | None, var: str, columns: list[Any],
           rows: list[Any]) -> dict[tuple[int, int], list[Item]]:
    """Each (column, row) position's items."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        p = rec.get("params") or {}
        groups.setdefault((key_of(p.get(x)), key_of(p.get(y)) if y else "null"), []).append(rec)
    return {(ci, ri): cell_items(groups.get((key_of(cv), key_of(rv)), []), var)
            for ci, cv in enumerate(columns) for ri, rv in enumerate(rows)}


def _fit_cell(cell: int, columns: int, rows: int, per: int) -> int:
    """The cell size, shrunk so the whole grid stays under ``MAX_PIXELS``."""
    fitted = int((MAX_PIXELS / (columns * per * rows)) ** 0.5)
    if fitted >= cell:
        return cell
    if fitted < 16:
        raise UsageError(f"a {columns} x {rows} grid with {per} images per cell is too big for one image; "
                         "narrow it with --where or split it with --z")
    log.info("cells shrunk from %d to %d px to keep the grid under %d pixels", cell, fitted, MAX_PIXELS)
    return fitted


def _column_labels(canvas: Any, plan: Layout, face: d.Face, x: str, values: list[str]) -> None:
    """One line over each column, as wide as the column at most, the value kept (``stre… = 0.5``)."""
    for ci, value in enumerate(values):
        text = d.fit_label(canvas, x, value, face, plan.cell_w)
        cx = plan.left + ci * (plan.cell_w + PAD) + (plan.cell_w - d.text_width(canvas, text, face)) // 2
        face.draw(canvas, (cx, plan.top - plan.fsize - PAD), text, INK)


def _row_labels(canvas: Any, plan: Layout, face: d.Face, y: str, values: list[str]) -> None:
    """Lines left of each row, centred on it, in the label area (``ROW_LABEL_MAX`` px at most)."""
    step = plan.fsize + 4
    for ri, value in enumerate(values):
        lines = d.label_lines(canvas, y, value, face, plan.left - 2 * PAD, max(1, plan.cell // step))
        cy = plan.top + ri * (plan.cell + PAD) + (plan.cell - len(lines) * step) // 2
        for li, line in enumerate(lines):
            face.draw(canvas, (PAD, cy + li * step), line, INK)


def _draw_item(image: Any, canvas: Any, item: Item, at: tuple[int, int], cell: int, face: d.Face, root: Path) -> None:
    x0, y0 = at
    box = (x0, y0, x0 + cell - 1, y0 + cell - 1)
    if item.kind == "image":
        try:
            pic = fit_image(root / item.value, cell)
            image.paste(pic, (x0 + (cell - pic.width) // 2, y0 + (cell - pic.height) // 2))
            return
        except TooLargeError as exc:
            item = Item("missing", str(exc))
        except unreadable() as exc:
            item = Item("missing", f"unreadable {Path(item.value).name}: {exc}")
    if item.kind == "text":
        canvas.rectangle(box, fill=BG, outline=(200, 200, 200))
        _text_block(canvas, item.value, box, face, INK)
        return
    failed = item.kind == "failed"
    canvas.rectangle(box, fill=FAILED_BG if failed else MISSING_BG, outline=FAILED_INK if failed else MISSING_INK, width=2)
    ink = FAILED_INK if failed else MISSING_INK
    canvas.line((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=ink, width=1)
    canvas.line((x0, y0 + cell - 1, x0 + cell - 1, y0), fill=ink, width=1)
    _text_block(canvas, item.value, box, face, ink, background=FAILED_BG if failed else MISSING_BG)


def _text_block(canvas: Any, text: str, box: tuple[int, int, int, int], face: d.Face, ink: tuple[int, int, int],
                background: tuple[int, int, int] | None = None) -> None:
    x0, y0, x1, y1 = box
    lines = d.wrap(canvas, text, face, x1 - x0 - 8, max(1, (y1 - y0 - 8) // (face.size + 3)))
    for i, line in enumerate(lines):
        at = (x0 + 4, y0 + 4 + i * (face.size + 3))
        if background:
            canvas.rectangle((at[0] - 1, at[1], at[0] + d.text_width(canvas, line, face) + 1, at[1] + face.size + 2), fill=background)
        face.draw(canvas, at, line, ink)
