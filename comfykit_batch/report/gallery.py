"""``gallery.html`` in an output folder: every job of the index on one static page.

Parameter values are stored once per parameter and referred to by position, so the page's data
stays small for 10,000 jobs; paths are relative, so the folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..files import save_stream
from .index import Results, failure_reason, key_of, label_of, load_results
from .page import TEMPLATE
from .thumbs import SIZE, ensure_thumbs

log = logging.getLogger("comfykit_batch.report.gallery")

GALLERY = "gallery.html"


def write_gallery(output_dir: str | Path, *, thumbs: bool = True, thumb_size: int = SIZE) -> Path:
    """Write ``<output_dir>/gallery.html`` (and missing thumbnails under ``thumbs/``); returns the page's path.

    Safe to call at the end of every batch: existing thumbnails are reused, the page is replaced atomically.
    """
    results = load_results(output_dir)
    made = ensure_thumbs(results.root, results.records, thumb_size) if thumbs else {}
    data = json.dumps(page_data(results, made), ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    text = fill(TEMPLATE, {"__DATA__": data, "__TITLE__": html.escape(f"{results.name}: {len(results.records)} jobs")})
    return save_stream([text.encode("utf-8")], results.root / GALLERY).path


def fill(template: str, values: Mapping[str, str]) -> str:
    """Each placeholder replaced in one pass over the template only, so no value is searched again.

    (Replacing one placeholder after another would rewrite a swept value that happens to read ``__TITLE__``.)
    """
    return re.sub("|".join(map(re.escape, values)), lambda m: values[m.group(0)], template)


def _inside(path: str) -> bool:
    """A relative path that stays in the folder (an edited index cannot point the page elsewhere)."""
    p = Path(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts


def page_data(results: Results, thumbs: Mapping[str, str]) -> dict[str, Any]:
    """What the page's script reads: parameters with their values, outputs, and one compact entry per job."""
    params = results.param_names()
    values = {p: results.values(p) for p in params}
    position = {p: {key_of(v): i for i, v in enumerate(vs)} for p, vs in values.items()}
    out_vars: dict[str, None] = {}
    jobs = []
    for rec in results.records:
        files = [[f.get("var"), f.get("kind"), f["path"], thumbs.get(f["path"])]
                 for f in rec.get("files") or [] if _inside(str(f.get("path") or ""))]
        texts = {str(k): [str(t) for t in v] for k, v in (rec.get("texts") or {}).items()}
        for var in [f[0] for f in files] + list(texts):
            out_vars.setdefault(str(var), None)
        job: dict[str, Any] = {"id": rec.get("id"), "w": rec.get("workflow"), "s": rec.get("status"),
                               "p": {p: position[p][key_of(v)] for p, v in (rec.get("params") or {}).items()},
                               "f": files, "t": texts}
        if rec.get("status") != "completed":
            job["e"] = failure_reason(rec)
        jobs.append(job)
    x, y = default_axes(results)
    return {"name": results.name, "params": params, "values": {p: [label_of(v) for v in vs] for p, vs in values.items()},
            "vars": list(out_vars), "jobs": jobs, "x": x, "y": y}


def default_axes(results: Results) -> tuple[str, str]:
    """The page's first X and Y: two varying parameters that vary independently of each other.

    Parameters swept together (a ``zip`` of colour and its label) would make a diagonal table, so
    only one of such a group is used, preferring the one with text values (``label`` over ``0xFF0000``);
    Y prefers a text-valued parameter too.
    """
    chosen: list[str] = []
    for p in results.varying():
        partner = next((c for c in chosen if _linked(results, c, p)), None)
        if partner is None:
            chosen.append(p)
        elif _is_text(results, p) and not _is_text(results, partner):
            chosen[chosen.index(partner)] = p
    if not chosen:
        return "", ""
    rest = chosen[1:]
    y = next((p for p in rest if _is_text(results, p)), rest[0] if rest else "")  # words read best as row labels
    return chosen[0], y


def _linked(results: Results, a: str, b: str) -> bool:
    """Every value of ``a`` comes with one value of ``b`` and back (1:1 over the records)."""
    pairs = {(key_of((r.get("params") or {}).get(a)), key_of((r.get("params") or {}).get(b))) for r in results.records}
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def _is_text(results: Results, p: str) -> bool:
    return all(isinstance(v, str) for v in results.values(p))
