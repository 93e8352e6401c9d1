"""A starter manifest (``comfykit-batch init``): the shortest way from a workflow to a first run.

With a workflow, every parameter its ``$`` markers define is written out with
its type, default, nodes and description: required ones as fixed values (so the
manifest runs as written), the others as a commented ``grid`` to uncomment, a
seed parameter as a commented ``seeds`` axis. The text is built line by line
(not dumped by a YAML library) so the comments sit where a reader needs them;
values are written as JSON, which YAML reads back unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..workflow import InputType, Workflow

#: a stand-in for a required value the workflow does not give; the dry run shows it
PLACEHOLDER = "CHANGE ME"
_PLACEHOLDERS: dict[str, Any] = {"int": 1, "float": 1.0, "number": 1, "bool": False, "upload": "input.png"}


def safe_manifest_name(text: str) -> str:
    """A name the schema accepts (``^[A-Za-z0-9][A-Za-z0-9._-]*$``), made from a file stem or title."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return name or "my-batch"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _commented(line: str, comment: str) -> str:
    return f"{line.ljust(34)}  # {comment}"


def _about(row: Mapping[str, Any]) -> str:
    """A parameter's row from ``Workflow.list_params``, as one comment: type, range, default, nodes, description."""
    kind = row["type"] + (" upload" if row["upload"] and row["type"] != "upload" else "")
    if row.get("min") is not None or row.get("max") is not None:
        kind += f" {_value(row.get('min'))}..{_value(row.get('max'))}"
    parts = [kind, "required" if row["required"] else ""]
    if row.get("choices"):
        shown = ", ".join(_value(c) for c in row["choices"][:6]) + (", ..." if len(row["choices"]) > 6 else "")
        parts.append(f"one of {shown}")
    if row["default"] is not None:
        parts.append(f"default {_value(row['default'])[:60]}")
    parts.append("node " + ", ".join(row["nodes"]))
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
            out.append(_commented(f"      {r['name']}: {_value(value)}", _about(r) + mark))
    optional = [r for r in rows if not r["required"] and r["name"] not in seed]
    if optional:
        out.append(_commented("    # grid:", "every combination of these lists: uncomment what to sweep"))
        out += [_commented(f"    #   {r['name']}: {_value([_first_value(r)[0]])}", _about(r)) for r in optional]
    for r in rows:
        if r["name"] in seed and not r["required"]:
            base = r["default"] if isinstance(r["default"], int) and not isinstance(r["default"], bool) else 0
            out.append(_commented(f"    # seeds: {{param: {r['name']}, count: 4, base: {base}}}", _about(r)))
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
    wf_name = safe_manifest_name(stem)
    lines = [f"# yaml-language-server: $schema={schema_ref}"] if schema_ref else []
    lines += [
        "# A starter manifest: check it with --dry-run (prints the plan, submits nothing), then run it.",
        _commented(f"name: {safe_manifest_name(name or stem)}", "results go to output/<name>/"),
        "",
        "# Where jobs run. Left out: COMFYUI_URL (or COMFYUI_BASE_URL) if set, else the managed local CPU ComfyUI.",
        "# backends:",
        '#   - {name: gpu1, url: "http://127.0.0.1:8188", concurrency: 2}',
        "",
        "# defaults: {timeout: 600, retries: 3}",
        "",
        "workflows:",
        f"  - name: {wf_name}",
        _commented(f"    source: {_value(source)}", "an API-format export (Export (API) in ComfyUI), relative to this file"),
        "",
    ]
    if workflow is None:
        lines += ["sweep:", f"  - workflow: {wf_name}", "    # params: {steps: 20}",
                  "    # grid: {cfg: [5, 7.5]}", "    # seeds: {param: seed, count: 4}"]
    else:
        lines += _sweep_lines(workflow, wf_name, types)
    return "\n".join(lines) + "\n"
