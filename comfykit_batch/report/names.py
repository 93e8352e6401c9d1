"""Readable, unique, sanitised file names for exported files, from a template over each job's fields."""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from ..errors import UsageError
from ..files import safe_name
from .index import label_of

DEFAULT_TEMPLATE = "{workflow}/{params}_{var}_{n}{ext}"


def fields(rec: Mapping[str, Any], file: Mapping[str, Any], n: int, varying: list[str]) -> dict[str, Any]:
    """What a name template or a caption template may use: every parameter and seed, plus job and file facts."""
    params = dict(rec.get("params") or {})
    out: dict[str, Any] = {**{k: v for k, v in (rec.get("seeds") or {}).items()}, **params}
    ext = PurePosixPath(str(file.get("path") or "")).suffix
    out.update(workflow=rec.get("workflow") or "", id=rec.get("id") or "", var=file.get("var") or "", n=n, ext=ext,
               kind=file.get("kind") or "", status=rec.get("status") or "",
               params="_".join(f"{k}-{label_of(params[k])}" for k in varying if k in params) or (rec.get("id") or ""))
    return out


def check_template(template: str, option: str, known: list[str]) -> None:
    """Fail in one line on a malformed template or a field no job has."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise UsageError(f"{option} {template!r}: {exc}") from None
    for name in names:
        base = name.split(".")[0].split("[")[0]
        if not base or base not in known:
            raise UsageError(f"{option} {template!r}: unknown field {{{name}}}; known fields: {', '.join(known)}")


def render(template: str, values: Mapping[str, Any]) -> str:
    """The template filled in, values shown as in the gallery (strings bare, numbers as written)."""
    return template.format_map({k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else label_of(v)
                                for k, v in values.items()})


class Namer:
    """Turns a rendered template into a relative path that is safe and not used before in this export."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def name(self, rendered: str, ext: str) -> str:
        parts = [p for p in rendered.replace("\\", "/").split("/") if p.strip(" .")]  # no empty, "." or ".." parts
        stem_parts = [safe_name(p, 100) for p in parts[:-1]]
        last = parts[-1] if parts else "file"
        if ext and last.lower().endswith(ext.lower()):
            last = last[: -len(ext)]
        base = safe_name(last, 150)
        ext = _clean_ext(ext)
        for k in range(1, 1_000_000):
            stem = "/".join([*stem_parts, f"{base}{'' if k == 1 else f'-{k}'}"])
            if stem.lower() not in self.taken:  # unique without the extension: a caption .txt sits beside each file
                self.taken.add(stem.lower())
                return stem + ext
        raise UsageError("too many files with the same exported name")  # pragma: no cover


def _clean_ext(ext: str) -> str:
    cleaned = safe_name(ext.lstrip("."), 10).lower()
    return f".{cleaned}" if ext and cleaned != "x" else ""
