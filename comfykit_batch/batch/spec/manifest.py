"""The YAML manifest: read, fill ``${VAR}`` from the environment, validate, resolve paths.

Reading happens in four steps, each its own function: the YAML (errors with
line, column, the line itself and a hint), the environment (``${VAR}``,
``${VAR:-default}``, ``$${`` for a literal ``${``; typed fields converted after
substitution), the schema (the editor's schema minus its ``${...}``
alternatives, so a value is checked as it will be used), then the parts:
value files, backends, workflows, cross-references. Reading the text and
wording every message (with secrets kept out) is ``manifest_text``; value lists
read from files are ``value_files``; each sweep block is typed once, here, as
a ``blocks.Block`` of ``axes``, which is all the rest of the batch reads.

Every error names the file, the key path and what was expected, in one line,
before anything is submitted. Secrets come from environment variables and are
never echoed back: every message passes through one redaction step.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from ...defaults import DEFAULTS, env_comfyui_output_dir, env_comfyui_url, executor_type
from ...errors import ConfigError, ManifestError
from ...sources import is_path_source
from ...uploads import redact_url
from .blocks import WORKFLOW, Block, fold_repeats, named_mappings, problems, read_files, swept_names, workflows_of
from .ids import distinct
from .inputs import InputSet, found
from .location import is_remote_folder, local_home
from .manifest_text import SECRET_KEY, Context, Path_, did_you_mean, is_secret_path, key_path, read_yaml, secret_values
from .notify import NotifySpec, parse_notify

__all__ = [
    "BackendSpec", "Block", "Manifest", "ManifestError", "WorkflowSpec", "check_report", "did_you_mean", "key_path",
    "load_manifest", "schema", "strict_schema", "swept_names",
]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "manifest.schema.json"
ENV_REF = "#/definitions/env"
#: ``$${`` (a literal ``${``), ``${NAME}`` / ``${NAME:-default}``, or a ``${`` that is neither (an error)
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")



@dataclass
class BackendSpec:
    """One backend as the manifest describes it (secrets already filled in, never printed)."""

    name: str
    type: str  # comfyui | runninghub
    url: str
    executor: str = DEFAULTS.batch_executor
    concurrency: int = DEFAULTS.concurrency
    api_key: str | None = field(default=None, repr=False)
    cookies: str | None = field(default=None, repr=False)
    instance_type: str | None = None
    webhook_url: str | None = None
    poll_interval: float | None = None
    #: the server's output folder as this machine sees it (outputs are read there instead of downloaded)
    server_output_dir: str | None = None
    #: model sets the server keeps loaded at once (the scheduler's view of its memory)
    model_slots: int = DEFAULTS.model_slots

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
    blocks: list[Block]  # typed once; each a mapping of the block as written, value files read (plain lists only)
    timeout: float = DEFAULTS.job_timeout
    retries: int = DEFAULTS.retries
    check_nodes: bool = DEFAULTS.check_nodes
    save_previews: bool = DEFAULTS.save_previews
    backend_down_limit: float = DEFAULTS.backend_down_limit
    schedule: str = DEFAULTS.schedule  # "models" (jobs grouped by the model files they load) or "sweep"
    #: this many jobs in a row failing the same way (kind and node) stop the batch; 0 never stops
    stop_after_failures: int = DEFAULTS.stop_after_failures
    report: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    sweep_is_list: bool = True  # `sweep:` written as a list of blocks (key paths sweep[i]) or one block (sweep)
    output_url: str | None = None  # an fsspec URL (s3://...) when the results go to object storage; ``output`` mirrors it
    folded: list[tuple[str, int]] = field(default_factory=list)  # (key path, repeated values left out there)
    notify: NotifySpec | None = None  # the webhook told how the run ended (``notify:``), if any
    input_sets: list[InputSet] = field(default_factory=list)  # each ``{from: "photos/*.jpg"}`` read, for the dry run

    def __post_init__(self) -> None:
        self.blocks = [Block.of(block) for block in self.blocks]  # typed once, whoever made the manifest

    @property
    def destination(self) -> str | Path:
        """Where the results go: the URL of a remote folder, else the local one."""
        return self.output_url or self.output

    def block_path(self, index: int) -> str:
        """The key path of sweep block ``index`` as the manifest spells it: ``sweep[1]``, or ``sweep`` for a single block."""
        return f"sweep[{index}]" if self.sweep_is_list else "sweep"


# -- schemas ----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The editor's schema (draft-07): accepts ``${VAR}`` wherever a value may come from the environment."""
    return json.loads(SCHEMA_PATH.read_text())


def _drop_env(node: Any) -> Any:
    if isinstance(node, list):
        return [_drop_env(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _drop_env(v) for k, v in node.items()}
    branches = out.get("anyOf")
    if isinstance(branches, list) and {"$ref": ENV_REF} in branches:
        rest = [b for b in branches if b != {"$ref": ENV_REF}]
        del out["anyOf"]
        if len(rest) == 1:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
    return out


@lru_cache(maxsize=1)
def strict_schema() -> dict[str, Any]:
    """The schema a manifest is checked against once ``${VAR}`` is filled in: no environment alternatives."""
    return _drop_env(schema())


# -- step 2: the environment --------------------------------------------------------------------------
def _fill(node: Any, where: Path_, ctx: Context) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, (*where, k), ctx) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, (*where, i), ctx) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        return _fill_string(node, where, ctx)
    return node


def _fill_string(text: str, where: Path_, ctx: Context) -> str:
    used: list[str] = []

    def one(m: re.Match[str]) -> str:
        if m[0] == "$${":
            return "${"
        if m[1] is None:
            raise ctx.error(where, "'${' must start ${NAME} or ${NAME:-default}; write $${ for a literal ${")
        used.append(m[1])
        value = os.environ.get(m[1])
        if value is None or value == "":
            if m[2] is not None:
                return m[2]
            raise ctx.error(where, f"environment variable {m[1]} is not set")
        if is_secret_path(where) or SECRET_KEY.search(m[1]):
            ctx.secrets.add(value)
        return value

    out = _VAR.sub(one, text)
    if used:
        ctx.filled[where] = text if not is_secret_path(where) else "${" + used[0] + "}"
    return out


def _schema_at(node: Any, where: Path_) -> Iterator[dict[str, Any]]:
    """Every subschema that may apply at ``where`` (branches of anyOf/oneOf/if-then-else all included)."""
    root = strict_schema()
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        yield from _schema_at(root["definitions"][ref.rsplit("/", 1)[-1]], where)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key) or []:
            yield from _schema_at(branch, where)
    for key in ("then", "else"):
        if key in node:
            yield from _schema_at(node[key], where)
    if not where:
        yield node
        return
    head, rest = where[0], where[1:]
    if isinstance(head, int):
        if isinstance(node.get("items"), dict):
            yield from _schema_at(node["items"], rest)
    elif head in (node.get("properties") or {}):
        yield from _schema_at(node["properties"][head], rest)
    elif isinstance(node.get("additionalProperties"), dict):
        yield from _schema_at(node["additionalProperties"], rest)


def _wanted_types(where: Path_) -> set[str]:
    types: set[str] = set()
    for sub in _schema_at(strict_schema(), where):
        t = sub.get("type")
        types.update([t] if isinstance(t, str) else (t or []))
        if "enum" in sub or "const" in sub:
            types.add("string")
    return types


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _convert(text: str, types: set[str]) -> Any:
    s = text.strip()
    if "integer" in types and re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    if "number" in types:
        try:
            return int(s) if re.fullmatch(r"[+-]?\d+", s) else float(s)
        except ValueError:
            pass
    if "boolean" in types and s.lower() in _BOOLS:
        return _BOOLS[s.lower()]
    raise ValueError(text)


def _set(data: Any, where: Path_, value: Any) -> None:
    for p in where[:-1]:
        data = data[p]
    data[where[-1]] = value


def _get(data: Any, where: Path_) -> Any:
    for p in where:
        data = data[p]
    return data


def _convert_filled(data: Any, ctx: Context) -> None:
    """A ``${VAR}`` in a typed field (``concurrency: ${CONC:-4}``) becomes that type once filled in."""
    for where, template in ctx.filled.items():
        value = _get(data, where)
        types = _wanted_types(where)
        if not isinstance(value, str) or not types or "string" in types:
            continue
        try:
            _set(data, where, _convert(value, types))
        except ValueError:
            wanted = " or ".join(sorted(types - {"null"}))
            raise ctx.error(where, f"{template} gave {ctx.shown(where, value, source=False)}; expected {wanted}") from None


# -- step 3: the schema -------------------------------------------------------------------------------
def _deepest(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    # inside a oneOf/anyOf, the deepest error of the branch that fits best says the most
    while err.context:
        if err.validator in ("anyOf", "oneOf") and all(e.validator == "type" for e in err.context):
            return err
        err = jsonschema.exceptions.best_match(err.context)
    return err


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _describe_value(err: jsonschema.ValidationError, ctx: Context) -> str | None:
    """What was wrong with a single value: its type, its choices, its form, its bounds."""
    where, v, got = tuple(err.absolute_path), err.validator, err.instance
    want: Any = err.validator_value  # typed loosely by jsonschema
    if v == "type":
        quote = isinstance(got, bool) and want == "string"
        hint = " (YAML reads yes/no/on/off/true/false as booleans: quote it)" if quote else ""
        return f"expected {_wanted(want, err.schema)}, got {_kind(got)}{hint}"
    if v in ("anyOf", "oneOf") and err.context and all(e.validator == "type" for e in err.context):
        kinds = " or ".join(dict.fromkeys(str(e.validator_value) for e in err.context))
        kinds = "a list of values (or {from: FILE})" if kinds == "array or object" else kinds
        return f"expected {kinds}, got {_kind(got)}"
    if v == "enum":
        return "expected one of " + ", ".join(map(repr, want)) + f", got {ctx.shown(where, got)}"
    if v == "const":
        return f"expected {want!r}, got {ctx.shown(where, got)}"
    if v == "pattern":
        return f"expected {_PATTERNS.get(want, f'a string matching {want}')}, got {ctx.shown(where, got)}"
    if v in _BOUNDS:
        return f"expected a number {_BOUNDS[v]} {want}, got {ctx.shown(where, got)}"
    if v in ("minItems", "maxItems"):
        return f"expected {'at least' if v == 'minItems' else 'at most'} {want} item(s)"
    return None


def _wanted(kind: Any, sub: Any) -> str:
    """What a type error expected, in words: a mapping names the keys the schema allows there."""
    keys = list(sub.get("properties") or {}) if isinstance(sub, dict) and kind == "object" else []
    return f"a mapping with any of the keys {', '.join(keys)}" if keys else str(kind)


def _kind(value: Any) -> str:
    """What a value was, for a message: an empty key is nothing, not ``NoneType``."""
    return "nothing (the key is empty)" if value is None else type(value).__name__


def _describe_mapping(err: jsonschema.ValidationError) -> str | None:
    """What was wrong with a mapping: unknown keys (with a suggestion), missing ones, the wrong combination."""
    v, got = err.validator, err.instance
    want: Any = err.validator_value
    if not isinstance(got, dict):
        return None
    if v == "additionalProperties":
        allowed = list(err.schema.get("properties") or {}) if isinstance(err.schema, dict) else []
        unknown = [k for k in got if k not in allowed]
        return "; ".join(f"unknown key {k!r}{did_you_mean(k, allowed)}" for k in unknown) + f"; allowed: {', '.join(allowed)}"
    if v == "required":
        return f"missing required key {', '.join(repr(k) for k in want if k not in got)}"
    forms = [b["required"][0] for b in want if "required" in b] if v == "oneOf" else []
    if forms:
        return f"give exactly one of: {', '.join(forms)}"
    if v in ("oneOf", "anyOf"):
        return "does not match any allowed form; keys given: " + ", ".join(sorted(map(str, got)))
    return None


def _describe(err: jsonschema.ValidationError, ctx: Context) -> str:
    found = _describe_value(err, ctx) or _describe_mapping(err)
    if found:
        return found
    return "(hidden: secret value)" if is_secret_path(tuple(err.absolute_path)) else err.message


_PATTERNS = {
    "^(https?://[^?#]+|local)$": "http(s)://host:port (no ?query: secrets go in api_key) or 'local'",
    "^https?://[^?#]+$": "an http(s):// URL (no ?query)",
    "^[A-Za-z0-9][A-Za-z0-9._-]*$": "letters, digits, '.', '_' or '-' (starting with a letter or digit)",
    "^[A-Za-z0-9._-]+$": "letters, digits, '.', '_' or '-'",
    "^https?://[^/?#\\s]+[^\\s]*$": "an http(s):// URL",
}


def _validate(data: Any, ctx: Context) -> None:
    errors = list(jsonschema.Draft7Validator(strict_schema()).iter_errors(data))
    if errors:
        best = _deepest(jsonschema.exceptions.best_match(errors))
        raise ctx.error(tuple(best.absolute_path), _describe(best, ctx))


# -- step 4b: backends, workflows, sweep ---------------------------------------------------------------
def _backend_name(b: Mapping[str, Any], kind: str, i: int) -> str:
    if b.get("name"):
        return str(b["name"])
    if kind == "runninghub":
        return "runninghub"
    return "local" if b.get("url") == "local" else f"comfyui{i}"


def _one_backend(b: Mapping[str, Any], i: int, defaults: Mapping[str, Any], ctx: Context) -> BackendSpec:
    kind = b.get("type", "comfyui")
    runninghub = kind == "runninghub"
    where = ("backends", i, "executor") if "executor" in b else ("defaults", "executor")
    try:
        executor = executor_type(b.get("executor", defaults.get("executor", DEFAULTS.batch_executor)), where=key_path(where))
    except ConfigError:
        raise ctx.error(where, "expected 'http' or 'websocket' ('ws')") from None
    concurrency = DEFAULTS.runninghub_concurrency if runninghub else defaults.get("concurrency", DEFAULTS.concurrency)
    return BackendSpec(
        name=_backend_name(b, kind, i), type=kind,
        url=str(b.get("url") or (DEFAULTS.runninghub_url if runninghub else "")).rstrip("/"),
        executor=executor, concurrency=int(b.get("concurrency", concurrency)),
        api_key=b.get("api_key") or None, cookies=b.get("cookies") or None,
        instance_type=b.get("instance_type"), webhook_url=b.get("webhook_url"), poll_interval=b.get("poll_interval"),
        server_output_dir=_folder(b.get("server_output_dir"), ctx.base),
        model_slots=int(b.get("model_slots", defaults.get("model_slots", DEFAULTS.model_slots))),
    )


def _folder(value: Any, base: Path) -> str | None:
    """A folder the manifest names: made absolute against the manifest's folder; empty means none."""
    if not value:
        return None
    return str(base / Path(str(value)).expanduser())


def _implicit_backend(ctx: Context) -> dict[str, Any]:
    """No ``backends:``: ``COMFYUI_URL`` (or ``COMFYUI_BASE_URL``) when set, else the managed local server.

    ``COMFYUI_OUTPUT_DIR`` beside it names that server's output folder as this machine sees it.
    """
    url = env_comfyui_url()
    if url is None:
        return {"url": "local"}
    if url != "local" and not re.match(r"^https?://[^?#]+$", url):
        raise ctx.error("backends", f"no backends: given, so COMFYUI_URL is used; expected http(s)://host:port or 'local', "
                                    f"got {redact_url(url, query_mark='')!r}")
    return {"name": "local" if url == "local" else "comfyui", "url": url,
            "server_output_dir": env_comfyui_output_dir()}


def _backends(data: Mapping[str, Any], ctx: Context) -> list[BackendSpec]:
    defaults = data.get("defaults") or {}
    out: list[BackendSpec] = []
    for i, b in enumerate(data.get("backends") or [_implicit_backend(ctx)]):
        spec = _one_backend(b, i, defaults, ctx)
        if any(s.name == spec.name for s in out):
            raise ctx.error(("backends", i, "name"), f"duplicate backend name {spec.name!r}")
        out.append(spec)
    return out


def _source(src: str, base: Path) -> str:
    """A workflow source as the session resolves it: a path made absolute against the manifest's folder."""
    if not is_path_source(src):
        return src
    return str((base / Path(src).expanduser()).resolve())


def _workflows(data: Mapping[str, Any], backends: list[BackendSpec], ctx: Context) -> list[WorkflowSpec]:
    names = [b.name for b in backends]
    out: list[WorkflowSpec] = []
    for i, w in enumerate(data["workflows"]):
        for j, bname in enumerate(w.get("backends") or []):
            if bname not in names:
                raise ctx.error(("workflows", i, "backends", j),
                                f"no backend named {bname!r}{did_you_mean(bname, names)}; backends: {', '.join(sorted(names))}")
        if any(x.name == w["name"] for x in out):
            raise ctx.error(("workflows", i, "name"), f"duplicate workflow name {w['name']!r}")
        out.append(WorkflowSpec(w["name"], _source(w["source"], ctx.base), w.get("backends")))
    return out


def _check_block(block: Mapping[str, Any], where: Path_, wnames: list[str], ctx: Context) -> None:
    """What the schema cannot say: every workflow the block names exists, and each axis's own (``problems``)."""
    for t in workflows_of(block) or ():
        if t not in wnames:
            raise ctx.error((*where, WORKFLOW),
                            f"no workflow named {t!r}{did_you_mean(t, wnames)}; workflows: {', '.join(sorted(wnames))}")
    for path, message in problems(block):
        raise ctx.error((*where, *path), message)


_NOT_TEXT = {bool: ("a boolean", " (unquoted on/off/yes/no/true/false are booleans)"),
             type(None): ("null", " (unquoted null, ~ and an empty key are null)")}


def _names_are_text(mapping: Any, where: Path_, ctx: Context) -> None:
    """Parameter names must be text: YAML reads an unquoted ``1``, ``2.5``, ``on`` or ``null`` as another type."""
    for key in mapping if isinstance(mapping, dict) else ():
        if not isinstance(key, str):
            kind, hint = _NOT_TEXT.get(type(key), ("a number" if isinstance(key, int | float) else type(key).__name__, ""))
            raise ctx.error(where, f"parameter name {key!r} is read by YAML as {kind}, not text: quote it{hint}")


def _check_names(block: Mapping[str, Any], where: Path_, ctx: Context) -> None:
    """Every place of a block that names parameters (``named_mappings``): each name must be text."""
    for path, mapping in named_mappings(block):
        _names_are_text(mapping, (*where, *path), ctx)


def _folded(block: Mapping[str, Any], where: Path_) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """The block with each value repeated within an axis left out (the first kept), and (key path, values left
    out) where any were: one distinct combination is one job, and two jobs with one id would run at once."""
    folded: list[tuple[str, int]] = []

    def fold(items: list[Any], path: Path_) -> list[Any]:
        kept = distinct(items)
        if len(kept) == len(items):
            return items
        folded.append((key_path((*where, *path)), len(items) - len(kept)))
        return kept

    return fold_repeats(block, fold), folded


def _blocks(data: Mapping[str, Any], workflows: list[WorkflowSpec], ctx: Context) -> tuple[list[Block], list[tuple[str, int]]]:
    """The sweep as typed blocks (value files read, repeated values folded), and where values were folded;
    key paths as written (``sweep.grid`` or ``sweep[1].grid``)."""
    single = not isinstance(data["sweep"], list)
    raw = [data["sweep"]] if single else data["sweep"]
    wnames = [w.name for w in workflows]
    blocks: list[Block] = []
    folded: list[tuple[str, int]] = []
    for i, b in enumerate(raw):
        where: Path_ = ("sweep",) if single else ("sweep", i)
        _check_names(b, where, ctx)
        resolved = read_files(b, where, ctx)
        _check_block(resolved, where, wnames, ctx)
        kept, left_out = _folded(resolved, where)
        blocks.append(Block.of(kept))
        folded += left_out
    return blocks, folded


def _check_report(report: Mapping[str, Any], blocks: list[Block], ctx: Context) -> None:
    """A grid axis must be a swept parameter: a typo here would only show at the end of a long run."""
    grid = report.get("grid") or {}
    _names_are_text(grid.get("where"), ("report", "grid", "where"), ctx)
    names = swept_names(blocks)
    axes = [(k, grid[k]) for k in ("x", "y", "z") if k in grid] + [(f"where.{k}", k) for k in grid.get("where") or {}]
    for key, name in axes:
        if name not in names:
            raise ctx.error(("report", "grid", *key.split(".")),
                            f"{name!r} is not a parameter of the sweep{did_you_mean(name, names)}; parameters: {', '.join(names)}")


# -- putting it together -----------------------------------------------------------------------------
def _read(path: Path) -> Context:
    try:
        return Context(path, path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest file") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None


def parse_document(path: Path) -> tuple[dict[str, Any], Context]:
    """Steps 1 to 3: the manifest's data with ``${VAR}`` filled in and typed, checked against the schema."""
    ctx = _read(path)
    raw = read_yaml(ctx)
    if not isinstance(raw, dict):
        raise ctx.error("(top level)", "expected a mapping of keys (name, workflows, sweep, ...)")
    ctx.secrets.update(secret_values(raw))
    data = _fill(copy.deepcopy(raw), (), ctx)
    ctx.secrets.update(secret_values(data))
    _convert_filled(data, ctx)
    _validate(data, ctx)
    return data, ctx


def _output(where: str | Path) -> dict[str, Any]:
    """``output`` (a local folder) and ``output_url`` (an fsspec URL such as s3://, mirrored locally)."""
    if is_remote_folder(where):
        return {"output": local_home(str(where)), "output_url": str(where)}
    return {"output": Path(where)}


def check_report(manifest: Manifest) -> None:
    """Every parameter the report's grid names must be swept. Run by ``load_manifest`` unless told to leave it
    to its caller, who checks the sweep's names against the workflows first: a name misspelt in the sweep
    is then reported there, with the workflow's own name, instead of suggesting the report take the typo."""
    _check_report(manifest.report, manifest.blocks, Context(manifest.path, manifest.text))


def load_manifest(path: str | Path, *, output: str | Path | None = None, check_report_axes: bool = True) -> Manifest:
    """Read and check a manifest file; raises ``ManifestError`` with file and key path (secrets redacted).
    ``check_report_axes=False`` leaves ``check_report`` to the caller."""
    data, ctx = parse_document(Path(path))
    backends = _backends(data, ctx)
    workflows = _workflows(data, backends, ctx)
    blocks, folded = _blocks(data, workflows, ctx)
    if check_report_axes:
        _check_report(data.get("report") or {}, blocks, ctx)
    defaults = data.get("defaults") or {}
    return Manifest(
        path=ctx.file, text=ctx.text, name=data["name"], workflows=workflows, backends=backends, blocks=blocks,
        **_output(output if output else data.get("output") or Path("output") / data["name"]),
        timeout=float(defaults.get("timeout", DEFAULTS.job_timeout)),
        retries=int(defaults.get("retries", DEFAULTS.retries)),
        check_nodes=bool(defaults.get("check_nodes", DEFAULTS.check_nodes)),
        save_previews=bool(defaults.get("save_previews", DEFAULTS.save_previews)),
        backend_down_limit=float(defaults.get("backend_down_limit", DEFAULTS.backend_down_limit)),
        schedule=str(defaults.get("schedule", DEFAULTS.schedule)),
        stop_after_failures=int(defaults.get("stop_after_failures", DEFAULTS.stop_after_failures)),
        notify=parse_notify(data.get("notify")),
        report=dict(data.get("report") or {}), description=data.get("description"),
        sweep_is_list=isinstance(data["sweep"], list), folded=folded, input_sets=found(ctx),
    )
