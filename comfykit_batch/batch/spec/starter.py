"""A starter manifest (``comfykit-batch init``): the shortest way from a workflow to a first run.

With a workflow, every parameter its ``$`` markers define is written out with
its type, default, nodes and description: required ones as fixed values (so the
manifest runs as written), the others as a commented ``grid`` to uncomment, a
seed parameter as a commented ``seeds`` axis. The text is laid out line by line
so the comments sit where a reader needs them, but every name and value in it is
written by YAML's own emitter, on one line (``_yaml``), and every comment holds
printable text only (``_printable``): whatever a workflow's names, defaults, node
ids or descriptions hold, the manifest loads with the workflow's own values and
nothing in them can start a line (or a key) of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from ...workflow import InputType, Workflow

#: a stand-in for a required value the workflow does not give; the dry run shows it
PLACEHOLDER = "CHANGE ME"
_PLACEHOLDERS: dict[str, Any] = {"int": 1, "float": 1.0, "number": 1, "bool": False, "upload": "input.png"}


def safe_manifest_name(text: str) -> str:
    """A name the schema accepts (``^[A-Za-z0-9][A-Za-z0-9._-]*$``), made from a file stem or title."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return name or "my-batch"


class _Dumper(yaml.SafeDumper):
    """Strings double-quoted (as the JSON a workflow holds looks), escaped, never folded across lines."""


class _KeyDumper(yaml.SafeDumper):
    """Names plain where YAML reads them back as the same text; quoted and escaped otherwise."""


def _quoted(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')


def _plain_if_printable(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # a line break, U+2028 or a control character would let a plain or single-quoted scalar span lines
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=None if text.isprintable() else '"')


_Dumper.add_representer(str, _quoted)
_KeyDumper.add_representer(str, _plain_if_printable)


def _yaml(value: Any, dumper: type[yaml.SafeDumper] = _Dumper) -> str:
    """``value`` as YAML's emitter writes it in flow style, on one line, reading back as ``value``."""
    text = yaml.dump(value, Dumper=dumper, default_flow_style=True, allow_unicode=True, width=float("inf"),
                     sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...")


def _entry(indent: str, name: Any, value: Any) -> str:
    """``name: value``; a name too long for a YAML simple key (1024 characters) is written as an explicit key."""
    key = _yaml(name, _KeyDumper)
    return f"{indent}{key}: {_yaml(value)}" if len(key) < 1000 else f"{indent}? {key}\n{indent}: {_yaml(value)}"


def _printable(text: str) -> str:
    """Comment text: a line break (or any character YAML refuses in a file) escaped, so a comment stays one comment."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _commented(line: str, comment: str) -> str:
    return f"{line.ljust(34)}  # {_printable(comment)}"


def _about(row: Mapping[str, Any]) -> str:
    """A parameter's row from ``Workflow.list_params``, as one comment: type, range, default, nodes, description."""
    kind = row["type"] + (" upload" if row["upload"] and row["type"] != "upload" else "")
    if row.get("min") is not None or row.get("max") is not None:
        kind += f" {_yaml(row.get('min'))}..{_yaml(row.get('max'))}"
    parts = [kind, "required" if row["required"] else ""]
    if row.get("choices"):
        shown = ", ".join(_yaml(c) for c in row["choices"][:6]) + (", ..." if len(row["choices"]) > 6 else "")
        parts.append(f"one of {shown}")
    if row["default"] is not None:
        parts.append(f"default {_yaml(row['default'])[:60]}")
    parts.append("node " + ", ".join(map(str, row["nodes"])))
    about = ", ".join(x for x in parts if x)
    if row.get("description"):
        about += ": " + " ".join(str(row["description"]).split())
    return about


def _first_value(row: Mapping[str, Any]) -> tuple[Any, str]:
    """A value the manifest can run with as written, and a mark when it is only a stand-in."""
    if row["default"] is not None:
        return row["default"], ""
    if row.get("choices"):
        return row["choices"][0], ""
    return _PLACEHOLDERS.get(row["type"], PLACEHOLDER), "  <- CHANGE ME"


def _sweep_lines(wf: Workflow, wf_name: str, types: Mapping[str, InputType] | None) -> list[str]:
    rows = wf.list_params(types)
    seed = {name for name, p in wf.parameters.items() if p.is_seed}
    out = ["sweep:", f"  - workflow: {wf_name}"]
    required = [r for r in rows if r["required"]]
    if required:
        out.append(_commented("    params:", "fixed values for every job (required parameters)"))
        for r in required:
            value, mark = _first_value(r)
            out.append(_commented(_entry("      ", r["name"], value), _about(r) + mark))
    optional = [r for r in rows if not r["required"] and r["name"] not in seed]
    if optional:
        out.append(_commented("    # grid:", "every combination of these lists: uncomment what to sweep"))
        out += [_commented(_entry("    #   ", r["name"], [_first_value(r)[0]]), _about(r)) for r in optional]
    for r in rows:
        if r["name"] in seed and not r["required"]:
            base = r["default"] if isinstance(r["default"], int) and not isinstance(r["default"], bool) else 0
            out.append(_commented(f"    # seeds: {_yaml({'param': r['name'], 'count': 4, 'base': base}, _KeyDumper)}", _about(r)))
    if not rows:
        out.append("    # the workflow has no $ markers: title nodes $name.input to make parameters (README: Your first workflow)")
    out.append(_commented("    # repeat: 1", "run each combination this many times"))
    out.append(_commented("    # exclude: [{param: value}]", "drop combinations matching every key of a rule"))
    return out


def starter_manifest(workflow: Workflow | None = None, *, source: str = "workflow.json", name: str | None = None,
                     schema_ref: str | None = None, types: Mapping[str, InputType] | None = None) -> str:
    """The text of a starter manifest for ``workflow`` (read from ``source``, written as given, relative to the manifest).

    Without a workflow, a skeleton naming ``source`` with the common keys commented.
    ``schema_ref`` (a path or URL) is written as the editor's ``$schema`` comment; ``types`` (a server's,
    from ``Executor.types_for``) adds exact types, ranges and choices to the comments.
    """
    stem = re.sub(r"\.json$", "", source.replace("\\", "/").rsplit("/", 1)[-1]) or "workflow"
    wf_name = _yaml(safe_manifest_name(stem), _KeyDumper)  # as written: a stem like "1" or "on" is quoted
    lines = [f"# yaml-language-server: $schema={_printable(schema_ref)}"] if schema_ref else []
    lines += [
        "# A starter manifest: check it with --dry-run (prints the plan, submits nothing), then run it.",
        _commented(f"name: {_yaml(safe_manifest_name(name or stem), _KeyDumper)}", "results go to output/<name>/"),
        "",
        "# Where jobs run. Left out: COMFYUI_URL (or COMFYUI_BASE_URL) if set, else the managed local CPU ComfyUI.",
        "# backends:",
        '#   - {name: gpu1, url: "http://127.0.0.1:8188", concurrency: 2}',
        "",
        "# defaults: {timeout: 600, retries: 3}",
        "",
        "workflows:",
        f"  - name: {wf_name}",
        _commented(f"    source: {_yaml(source)}", "an API-format export (Export (API) in ComfyUI), relative to this file"),
        "",
    ]
    if workflow is None:
        lines += ["sweep:", f"  - workflow: {wf_name}", "    # params: {steps: 20}",
                  "    # grid: {cfg: [5, 7.5]}", "    # seeds: {param: seed, count: 4}"]
    else:
        lines += _sweep_lines(workflow, wf_name, types)
    return "\n".join(lines) + "\n"
