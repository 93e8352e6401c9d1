"""The YAML manifest: read, fill ``${VAR}`` from the environment, validate, resolve paths.

Every error names the file, the key path and what was expected, in one line,
before anything is submitted. Secrets come from environment variables and are
never echoed back in those errors.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..errors import ComfyKitError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SECRET_KEYS = frozenset({"api_key", "cookies"})


class ManifestError(ComfyKitError, ValueError):
    """The manifest cannot be used as written."""


@dataclass
class BackendSpec:
    """One backend as the manifest describes it (secrets already filled in, never printed)."""

    name: str
    type: str  # comfyui | runninghub
    url: str
    executor: str = "websocket"
    concurrency: int = 2
    api_key: str | None = field(default=None, repr=False)
    cookies: str | None = field(default=None, repr=False)
    instance_type: str | None = None
    webhook_url: str | None = None
    poll_interval: float | None = None

    @property
    def managed(self) -> bool:
        """True for the project's own local CPU ComfyUI (started by the CLI)."""
        return self.type == "comfyui" and self.url == "local"


@dataclass
class WorkflowSpec:
    name: str
    source: str  # absolute path, URL, or RunningHub id
    backends: list[str] | None = None


@dataclass
class Manifest:
    path: Path
    text: str  # exactly as read, for the copy kept beside the results
    name: str
    output: Path
    backends: list[BackendSpec]
    workflows: list[WorkflowSpec]
    blocks: list[dict[str, Any]]
    timeout: float = 600.0
    retries: int = 3
    check_nodes: bool = True
    save_previews: bool = False


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def key_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _interpolate(node: Any, where: list[Any], file: Path) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, where + [k], file) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, where + [i], file) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        def fill(m: re.Match[str]) -> str:
            value = os.environ.get(m[1])
            if value is None or value == "":
                if m[2] is not None:
                    return m[2]
                raise ManifestError(f"{file}: {key_path(where)}: environment variable {m[1]} is not set")
            return value

        return _VAR.sub(fill, node)
    return node


def _describe(err: jsonschema.ValidationError) -> str:
    secret = any(p in SECRET_KEYS for p in err.absolute_path)
    v = err.validator
    if v == "type":
        return f"expected {err.validator_value}, got {type(err.instance).__name__}"
    if v == "enum":
        return "expected one of " + ", ".join(map(repr, err.validator_value))
    if v == "const":
        return f"expected {err.validator_value!r}"
    if v == "pattern":
        return f"expected a string matching {err.validator_value}" + ("" if secret else f", got {err.instance!r}")
    if v in ("oneOf", "anyOf") and isinstance(err.instance, dict):
        return "does not match any allowed form; keys given: " + ", ".join(sorted(err.instance))
    return "(hidden: secret value)" if secret else err.message


def _validate(data: Any, file: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    best = jsonschema.exceptions.best_match(errors)
    # inside a oneOf, the deepest error of the branch that fits best says the most
    while best.context:
        best = jsonschema.exceptions.best_match(best.context)
    raise ManifestError(f"{file}: {key_path(best.absolute_path)}: {_describe(best)}")


def load_manifest(path: str | Path, *, output: str | Path | None = None) -> Manifest:
    """Read and check a manifest file; raises ``ManifestError`` with file and key path."""
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise ManifestError(f"{file}: no such manifest file") from None
    except OSError as exc:
        raise ManifestError(f"{file}: cannot read ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise ManifestError(f"{file}: {where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{file}: (top level): expected a mapping of keys (name, workflows, sweep, ...)")
    data = _interpolate(raw, [], file)
    _validate(data, file)
    base = file.resolve().parent
    defaults = data.get("defaults") or {}
    executor = defaults.get("executor", "websocket")
    concurrency = defaults.get("concurrency", 2)

    backends: list[BackendSpec] = []
    for i, b in enumerate(data.get("backends") or [{"url": "local"}]):
        kind = b.get("type", "comfyui")
        default_url = "https://www.runninghub.ai" if kind == "runninghub" else ""
        spec = BackendSpec(
            name=b.get("name") or (kind if kind == "runninghub" else ("local" if b.get("url") == "local" else f"comfyui{i}")),
            type=kind,
            url=(b.get("url") or default_url).rstrip("/"),
            executor=b.get("executor", executor),
            concurrency=b.get("concurrency", 1 if kind == "runninghub" else concurrency),
            api_key=b.get("api_key") or None,
            cookies=b.get("cookies") or None,
            instance_type=b.get("instance_type"),
            webhook_url=b.get("webhook_url"),
            poll_interval=b.get("poll_interval"),
        )
        if any(s.name == spec.name for s in backends):
            raise ManifestError(f"{file}: backends[{i}].name: duplicate backend name {spec.name!r}")
        backends.append(spec)
    names = {b.name for b in backends}

    workflows: list[WorkflowSpec] = []
    for i, w in enumerate(data["workflows"]):
        src = w["source"]
        if not (src.isdigit() or src.startswith(("http://", "https://", "webapp:"))):
            src = str((base / src).resolve())
        for j, bname in enumerate(w.get("backends") or []):
            if bname not in names:
                raise ManifestError(
                    f"{file}: workflows[{i}].backends[{j}]: no backend named {bname!r}; backends: {', '.join(sorted(names))}"
                )
        if any(x.name == w["name"] for x in workflows):
            raise ManifestError(f"{file}: workflows[{i}].name: duplicate workflow name {w['name']!r}")
        workflows.append(WorkflowSpec(w["name"], src, w.get("backends")))
    wnames = {w.name for w in workflows}

    blocks = data["sweep"] if isinstance(data["sweep"], list) else [data["sweep"]]
    for i, block in enumerate(blocks):
        targets = block.get("workflow")
        for t in [targets] if isinstance(targets, str) else (targets or []):
            if t not in wnames:
                raise ManifestError(f"{file}: sweep[{i}].workflow: no workflow named {t!r}; workflows: {', '.join(sorted(wnames))}")
        zipped = block.get("zip") or {}
        if len({len(v) for v in zipped.values()}) > 1:
            lengths = ", ".join(f"{k}={len(v)}" for k, v in zipped.items())
            raise ManifestError(f"{file}: sweep[{i}].zip: lists must have equal lengths ({lengths})")
        rng = block.get("random")
        for pname, spec in ((rng or {}).get("params") or {}).items():
            if "range" in spec and spec["range"][0] > spec["range"][1]:
                raise ManifestError(f"{file}: sweep[{i}].random.params.{pname}.range: expected [low, high] with low <= high")

    out = Path(output) if output else Path(data.get("output") or Path("output") / data["name"])
    return Manifest(
        path=file, text=text, name=data["name"], output=out, backends=backends, workflows=workflows, blocks=blocks,
        timeout=float(defaults.get("timeout", 600.0)), retries=int(defaults.get("retries", 3)),
        check_nodes=bool(defaults.get("check_nodes", True)), save_previews=bool(defaults.get("save_previews", False)),
    )
