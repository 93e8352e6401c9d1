"""Readable, unique, sanitised file names for exported files, from a template over each job's fields."""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

from ..errors import UsageError
from ..files import safe_name
from .index import label_of

DEFAULT_TEMPLATE = "{workflow}/{params}_{var}_{n}{ext}"
FIXED = ["workflow", "id", "var", "n", "ext", "kind", "status", "params"]
FORMATTER = string.Formatter()


def fields(rec: Mapping[str, Any], file: Mapping[str, Any], n: int, varying: list[str]) -> dict[str, Any]:
    """What a name template or a caption template may use: every parameter and seed, plus job and file facts."""
    params = dict(rec.get("params") or {})
    out: dict[str, Any] = {**{k: v for k, v in (rec.get("seeds") or {}).items()}, **params}
    ext = PurePosixPath(str(file.get("path") or "")).suffix
    out.update(workflow=rec.get("workflow") or "", id=rec.get("id") or "", var=file.get("var") or "", n=n, ext=ext,
               kind=file.get("kind") or "", status=rec.get("status") or "",
               params="_".join(f"{k}-{label_of(params[k])}" for k in varying if k in params) or (rec.get("id") or ""))
    return out


def known_fields(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every field some job has: its parameters and seeds (a block may set a parameter others lack) and the fixed ones."""
    known = dict.fromkeys(FIXED)
    for rec in records:
        known.update(dict.fromkeys(rec.get("seeds") or {}))
        known.update(dict.fromkeys(rec.get("params") or {}))
    return sorted(known)


def _parse(template: str, option: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(FORMATTER.parse(template))
    except ValueError as exc:
        raise UsageError(f"{option} {template!r}: {exc}") from None


def check_template(template: str, option: str, known: list[str]) -> None:
    """Fail in one line on a malformed template, a field no job has or an unknown ``!conversion``."""
    for name, conversion in _fields(template, option):
        base = name.split(".")[0].split("[")[0]
        if not base or base not in known:
            raise UsageError(f"{option} {template!r}: unknown field {{{name}}}; known fields: {', '.join(known)}")
        if conversion not in (None, "s", "r", "a"):
            raise UsageError(f"{option} {template!r}: {{{name}!{conversion}}}: unknown conversion; expected !s, !r or !a")


def _fields(template: str, option: str) -> Iterator[tuple[str, str | None]]:
    """Each field's name and conversion, those nested in a format spec too (``{seed:{width}}``)."""
    for _, name, spec, conversion in _parse(template, option):
        if name is not None:
            yield name, conversion
        if spec:
            yield from _fields(spec, option)


def render(template: str, values: Mapping[str, Any], option: str = "template") -> str:
    """The template filled in, values shown as in the gallery (strings bare, numbers as written).

    A field this job lacks (a parameter only another sweep block sets) is left empty, format spec and all,
    so a name loses that part rather than the export stopping; a spec that does not fit a value
    (``{label:d}`` on ``red``) is a one-line ``UsageError`` naming the option, the field and the job.
    """
    shown = {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else label_of(v) for k, v in values.items()}
    out = []
    for literal, name, spec, conversion in _parse(template, option):
        out.append(literal)
        if name is not None:
            out.append(_field(template, option, shown, name, spec or "", conversion))
    return "".join(out)


def _field(template: str, option: str, shown: Mapping[str, Any], name: str, spec: str, conversion: str | None) -> str:
    if name.split(".")[0].split("[")[0] not in shown:
        return ""
    try:
        value = FORMATTER.get_field(name, (), shown)[0]
        return format(FORMATTER.convert_field(value, conversion), render(spec, shown, option))
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        job = shown.get("id") or "?"
        raise UsageError(f"{option} {template!r}: cannot fill {{{name}{'!' + conversion if conversion else ''}"
                         f"{':' + spec if spec else ''}}} for job {job}: {exc}") from None


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
