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
from typing import Any

from ..workflow import Parameter, Workflow

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


def _about(p: Parameter) -> str:
    parts = [p.type + (" upload" if p.upload and p.type != "upload" else ""), "required" if p.required else ""]
    if p.has_default:
        parts.append(f"default {_value(p.default)[:60]}")
    parts.append("node " + ", ".join(f"{nid}.{fld}" for nid, fld in p.targets))
    about = ", ".join(x for x in parts if x)
    if p.description:
        about += ": " + " ".join(p.description.split())
    return about


def _required_value(p: Parameter) -> tuple[Any, str]:
    if p.has_default:
        return p.default, ""
    if p.choices:
        return p.choices[0], ""
    return _PLACEHOLDERS.get(p.type, PLACEHOLDER), "  <- CHANGE ME"


def _sweep_lines(wf: Workflow, wf_name: str) -> list[str]:
    params = list(wf.parameters.values())
    required = [p for p in params if p.required]
    seeds = [p for p in params if p.is_seed and not p.required]
    optional = [p for p in params if not p.required and p not in seeds]
    out = ["sweep:", f"  - workflow: {wf_name}"]
    if required:
        out.append("    params:                      # fixed values for every job (required parameters)")
        for p in required:
            value, mark = _required_value(p)
            out.append(_commented(f"      {p.name}: {_value(value)}", f"{_about(p)}{mark}"))
    if optional:
        out.append("    # grid:                      # every combination of these lists: uncomment what to sweep")
        for p in optional:
            default = [p.default] if p.has_default else [_PLACEHOLDERS.get(p.type, PLACEHOLDER)]
            out.append(_commented(f"    #   {p.name}: {_value(default)}", _about(p)))
    for p in seeds:
        base = p.default if p.has_default and isinstance(p.default, int) else 0
        out.append(_commented(f"    # seeds: {{param: {p.name}, count: 4, base: {base}}}", _about(p)))
    if not params:
        out.append("    # the workflow has no $ markers: title nodes $name.input to make parameters (README: Your first workflow)")
    out.append("    # repeat: 1                  # run each combination this many times")
    out.append("    # exclude: [{param: value}]  # drop combinations matching every key of a rule")
    return out


def starter_manifest(workflow: Workflow | None = None, *, source: str = "workflow.json", name: str | None = None,
                     schema_ref: str | None = None) -> str:
    """The text of a starter manifest for ``workflow`` (read from ``source``, written as given, relative to the manifest).

    Without a workflow, a skeleton naming ``source`` with the common keys commented.
    ``schema_ref`` (a path or URL) is written as the editor's ``$schema`` comment.
    """
    stem = re.sub(r"\.json$", "", source.replace("\\", "/").rsplit("/", 1)[-1]) or "workflow"
    wf_name = safe_manifest_name(stem)
    lines = [f"# yaml-language-server: $schema={schema_ref}"] if schema_ref else []
    lines += [
        "# A starter manifest: check it with --dry-run (prints the plan, submits nothing), then run it.",
        f"name: {safe_manifest_name(name or stem)}              # results go to output/<name>/",
        "",
        "# Where jobs run. Left out: COMFYUI_URL (or COMFYUI_BASE_URL) if set, else the managed local CPU ComfyUI.",
        "# backends:",
        '#   - {name: gpu1, url: "http://127.0.0.1:8188", concurrency: 2}',
        "",
        "# defaults: {timeout: 600, retries: 3}",
        "",
        "workflows:",
        f"  - name: {wf_name}",
        f"    source: {_value(source)}     # an API-format export (Export (API) in ComfyUI), relative to this file",
        "",
    ]
    if workflow is None:
        lines += ["sweep:", f"  - workflow: {wf_name}", "    # params: {steps: 20}",
                  "    # grid: {cfg: [5, 7.5]}", "    # seeds: {param: seed, count: 4}"]
    else:
        lines += _sweep_lines(workflow, wf_name)
    return "\n".join(lines) + "\n"
