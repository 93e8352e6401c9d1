"""The workflow model: load an API-format workflow, read its DSL parameters, bind values.

Nothing here touches the network. Binding checks every name and value before an
executor submits anything, so a typo fails in one line instead of as a 400 from
the server (or worse, silently runs the default).

A server's input types (``/object_info``) are never stored in the ``Workflow``:
one workflow object is shared by every backend, and two servers may disagree
(different model lists). ``input_types`` turns a server's answer into a plain
mapping that the caller keeps per (workflow, backend) and passes to ``bind``
and ``check_value``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .dsl import OutputMarker, ParamMarker, parse_title
from .errors import ParameterError, WorkflowError
from .uploads import UploadSource, classify, redact_url

# Load nodes upload whatever their file field is set to, marked with ~ or not.
LOAD_NODE_FIELDS: dict[str, str] = {
    "LoadImage": "image",
    "LoadImageMask": "image",
    "LoadAudio": "audio",
    "LoadVideo": "file",
    "VHS_LoadAudioUpload": "audio",
    "VHS_LoadVideo": "video",
}
SEED_FIELDS = frozenset({"seed", "noise_seed"})
RANDOM_SEED = "random"
SEED_MAX = 2**53 - 1  # exact in JSON and JavaScript, well within ComfyUI's seed range
#: ComfyUI parses integers into 64-bit C types (torch, numpy): anything wider overflows or wraps
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: V3 input kinds whose prompt keys are made when the workflow is edited: ``/object_info`` lists only a template
DYNAMIC_KINDS = frozenset({"COMFY_AUTOGROW_V3", "COMFY_DYNAMICCOMBO_V3", "COMFY_COMBODYNAMIC_V3"})

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class InputType:
    """What one parameter accepts: the workflow's literal's type, or the server's input spec.

    ``type`` is one of "int", "float", "str", "bool", "choice", "upload", "number"
    (a literal number whose int/float kind only the server knows) or "any".
    """

    type: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    multiline: bool = False
    #: "workflow" (guessed from the literal) or "server" (from /object_info): error messages say which
    origin: str = field(default="workflow", compare=False)

    @classmethod
    def from_spec(cls, spec: Any) -> InputType | None:
        """The type of one ComfyUI input spec (``["INT", {...}]``, ``[[...choices], {...}]``, ...); None if unreadable."""
        if not isinstance(spec, (list, tuple)) or not spec:
            return None
        kind, opts = spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        if isinstance(kind, (list, tuple)):
            return cls("choice", tuple(kind), origin="server")
        if kind == "COMBO":
            options = opts.get("options")
            if isinstance(options, (list, tuple)):
                return cls("choice", tuple(options), origin="server")
            return cls("any", origin="server")  # a combo filled in by the browser: nothing to check
        simple = {"INT": "int", "FLOAT": "float", "STRING": "str", "BOOLEAN": "bool"}
        if not isinstance(kind, str) or kind not in simple:
            return cls("any", origin="server")  # IMAGE, MODEL, "*": a value set over a link's input
        return cls(simple[kind], min=_num(opts.get("min")), max=_num(opts.get("max")), step=_num(opts.get("step")),
                   multiline=bool(opts.get("multiline")), origin="server")

    def merge(self, other: InputType) -> InputType:
        """The values both targets of one parameter accept (the same name on two nodes)."""
        if other.type != self.type:
            return self
        choices = self.choices
        if choices is not None and other.choices is not None:
            choices = tuple(c for c in choices if c in other.choices)
        lo = max((v for v in (self.min, other.min) if v is not None), default=None)
        hi = min((v for v in (self.max, other.max) if v is not None), default=None)
        return InputType(self.type, choices, lo, hi, self.step, self.multiline, self.origin)


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value)
    ):
        return value
    return None


UPLOAD_TYPE = InputType("upload")


@dataclass
class Parameter:
    """One named parameter of a workflow and the node inputs it sets."""

    name: str
    targets: list[tuple[str, str]]
    required: bool = False
    upload: bool = False
    default: Any = None
    has_default: bool = False
    #: the type guessed from the workflow's literal value; a server's is in ``Workflow.input_types``
    type: str = "any"
    description: str | None = None

    @property
    def is_seed(self) -> bool:
        return self.name in SEED_FIELDS or any(f in SEED_FIELDS for _, f in self.targets)

    @property
    def input_type(self) -> InputType:
        """The workflow's own type for this parameter (no server consulted)."""
        return UPLOAD_TYPE if self.upload else InputType(self.type)

    def to_dict(self, type: InputType | None = None) -> JsonDict:
        """A row for ``list_params``; ``type`` (from ``Workflow.input_types``) adds the server's view."""
        t = type or self.input_type
        row: JsonDict = {
            "name": self.name,
            "nodes": [f"{nid}.{fld}" for nid, fld in self.targets],
            "required": self.required,
            "upload": self.upload,
            "default": self.default if self.has_default else None,
            "type": t.type,
            "description": self.description,
        }
        for key in ("choices", "min", "max"):
            value = getattr(t, key)
            if value is not None:
                row[key] = list(value) if key == "choices" else value
        return row


def _literal_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"  # a literal 8 may be a FLOAT input: only /object_info knows
    if isinstance(value, str):
        return "str"
    return "any"


def _json_copy(data: Any) -> Any:
    """A deep copy of JSON data: the C encoder and decoder are several times faster than copy.deepcopy."""
    return json.loads(json.dumps(data))


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def is_ui_format(data: Any) -> bool:
    return isinstance(data, dict) and "nodes" in data and "links" in data


#: ``"_source": "runninghub"`` in a workflow file: it runs on RunningHub (any case)
RUNNINGHUB = "runninghub"


@dataclass(frozen=True)
class RemoteRef:
    """Where on RunningHub a workflow lives: a workflow id or an AI app's (webapp) id.

    Read once from a file's private keys (``"_source": "runninghub"``, ``"_workflow_id"`` or
    ``"_webapp_id"``), so the executors and the kit ask typed questions, not dict keys. ``fetched``:
    the nodes came from RunningHub itself (so a task names the workflow by id and sends no JSON).
    """

    workflow_id: str | None = None
    webapp_id: str | None = None
    fetched: bool = False

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> RemoteRef | None:
        """The reference a file's private keys make (``_source: runninghub``, or a RunningHub id without it), or
        None for a workflow that runs on ComfyUI."""
        ref = cls(_id(meta.get("_workflow_id")), _id(meta.get("_webapp_id")))
        marked = str(meta.get("_source", "")).lower() == RUNNINGHUB
        return ref if marked or ref.workflow_id or ref.webapp_id else None

    @property
    def is_app(self) -> bool:
        """An AI app: parameters are named ``nodeId.fieldName``, there is no workflow JSON."""
        return self.webapp_id is not None


def _id(value: Any) -> str | None:
    return str(value) if value else None


class Workflow:
    """An API-format ComfyUI workflow with its DSL parameters parsed."""

    def __init__(self, data: Mapping[str, Any], *, source: str = "<dict>", allow_empty: bool = False) -> None:
        if not isinstance(data, Mapping):
            raise WorkflowError(f"{source}: a workflow is a JSON object of nodes, not {type(data).__name__}")
        if is_ui_format(data):
            raise WorkflowError(
                f"{source}: this is a UI-format workflow (saved with 'Save'); in ComfyUI use "
                "'Export (API)' (enable dev mode options on older versions) and pass that file"
            )
        self.source = source
        #: the file's private keys as written (they count in the fingerprint); read through ``remote``
        self.meta: JsonDict = {k: v for k, v in data.items() if k.startswith("_")}
        #: where on RunningHub it runs; None for a workflow that runs on ComfyUI
        self.remote = RemoteRef.from_meta(self.meta)
        self.nodes: JsonDict = {}
        self._fingerprint: tuple[JsonDict, str] | None = None  # (the nodes it was computed from, the hash)
        self.parameters: dict[str, Parameter] = {}
        self.output_names: dict[str, str] = {}
        nodes = {k: v for k, v in data.items() if not k.startswith("_")}
        if nodes or not allow_empty:
            self.load_nodes(nodes)

    def load_nodes(self, nodes: Mapping[str, Any], *, fetched: bool = False) -> None:
        """Set the nodes (and parse their DSL): at construction, or once a remote workflow's JSON is fetched."""
        parsed: JsonDict = {}
        for nid, node in nodes.items():
            if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str) or not isinstance(
                node.get("inputs", {}), Mapping
            ):
                raise WorkflowError(
                    f"{self.source}: node {nid!r} is not an API-format node (expected an object with "
                    "'class_type' and 'inputs'); is this an API-format export?"
                )
            parsed[str(nid)] = copy.deepcopy(dict(node))
        if not parsed:
            raise WorkflowError(f"{self.source}: the workflow has no nodes")
        self.nodes, self.parameters, self.output_names = parsed, {}, {}
        if fetched and self.remote is not None:
            self.remote = replace(self.remote, fetched=True)
        self._parse_dsl()

    @property
    def nodes_pending(self) -> bool:
        """A RunningHub workflow known only by id: its nodes (and so its markers) come from RunningHub on first use."""
        return not self.nodes and self.remote is not None and self.remote.workflow_id is not None

    # -- loading -----------------------------------------------------------
    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "<json>") -> Workflow:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorkflowError(f"{source}: not valid JSON ({exc})") from exc
        return cls(data, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> Workflow:
        p = Path(path).expanduser()
        try:
            text = p.read_bytes()
        except FileNotFoundError as exc:
            raise WorkflowError(f"{p}: no such workflow file") from exc
        except OSError as exc:
            raise WorkflowError(f"{p}: cannot read the workflow ({exc.strerror})") from exc
        return cls.from_json(text, source=str(p))

    # -- DSL -----------------------------------------------------------------
    def _parse_dsl(self) -> None:
        for nid, node in self.nodes.items():
            title = (node.get("_meta") or {}).get("title") or ""
            if not isinstance(title, str):
                continue
            for marker in parse_title(title, nid):
                if isinstance(marker, OutputMarker):
                    self.output_names[nid] = marker.name
                    continue
                assert isinstance(marker, ParamMarker)
                self._check_marker_field(nid, node, marker)
                self._add_marker(nid, node, marker)

    def _check_marker_field(self, nid: str, node: Mapping[str, Any], marker: ParamMarker) -> None:
        """A marker must name an input the node has (a link's input counts): the server would drop any other."""
        inputs = node.get("inputs") or {}
        if marker.field in inputs or LOAD_NODE_FIELDS.get(node["class_type"]) == marker.field:
            return
        hint = _suggest(marker.field, [str(k) for k in inputs])
        have = ", ".join(sorted(map(str, inputs))) or "none"
        shown = _marker_text(marker.name, marker.field)
        raise WorkflowError(
            f"{self.source}: node {nid} ({node['class_type']}): marker {shown!r} sets input {marker.field!r}, "
            f"which the node does not have{hint}; its inputs: {have}"
        )

    def _add_marker(self, nid: str, node: Mapping[str, Any], marker: ParamMarker) -> None:
        inputs = node.get("inputs") or {}
        upload = marker.upload or LOAD_NODE_FIELDS.get(node["class_type"]) == marker.field
        p = self.parameters.get(marker.name)
        if p is None:
            p = self.parameters[marker.name] = Parameter(marker.name, [])
        p.targets.append((nid, marker.field))
        p.required = p.required or marker.required
        p.upload = p.upload or upload
        p.description = p.description or marker.description
        if not p.has_default and marker.field in inputs and not _is_link(inputs[marker.field]):
            p.default, p.has_default = inputs[marker.field], True
            p.type = "upload" if p.upload else _literal_type(p.default)
        elif p.upload:
            p.type = "upload"

    def input_types(self, object_info: Mapping[str, Any]) -> dict[str, InputType]:
        """Parameter name -> the server's type for it (from ``/object_info``); pure, the workflow is unchanged.

        Upload parameters stay "upload" (the server's combo lists only files it already has);
        a parameter whose node or input the server does not describe keeps the workflow's type.
        """
        out: dict[str, InputType] = {}
        for p in self.parameters.values():
            found: InputType | None = None
            for nid, fld in p.targets if not p.upload else ():
                t = InputType.from_spec(_input_spec(object_info, self.nodes[nid]["class_type"], fld))
                if t is not None:
                    found = t if found is None else found.merge(t)
            out[p.name] = found or p.input_type
        return out

    def check_server_inputs(self, object_info: Mapping[str, Any], server: str = "the server") -> list[str]:
        """Refuse a marker naming an input the server does not list for its node's class; warnings for the unsure.

        ComfyUI ignores a prompt input its class does not declare, so ``$w.Width`` beside a stale
        ``Width`` key would run with the old width and still complete. Where the server's list may
        be incomplete (``_server_inputs``), a refusal could be wrong: the returned warnings say so.
        A class the server does not describe is ``prepare``'s business (``MissingNodesError``).
        """
        warnings: list[str] = []
        for p in self.parameters.values():
            for nid, fld in p.targets:
                cls = self.nodes[nid]["class_type"]
                listed = _server_inputs(object_info, cls)
                if listed is None or fld in listed[0]:
                    continue
                names, why = listed[0], listed[1] or _grown(fld, listed[0])
                shown = _marker_text(p.name, fld)
                where = f"{self.source}: node {nid} ({cls}): marker {shown!r} sets input {fld!r}, which {server} does not list"
                if why:
                    warnings.append(f"{where} ({why}); the server may ignore the value")
                    continue
                raise ParameterError(f"{where} for {cls}{_suggest(fld, names)}, so the server would ignore the value; "
                                     f"inputs it lists: {', '.join(sorted(names)) or 'none'}")
        return warnings

    def list_params(self, types: Mapping[str, InputType] | None = None) -> list[JsonDict]:
        """One row per parameter (name, nodes, required, default, type, ...), with a server's types if given."""
        return [p.to_dict((types or {}).get(p.name)) for p in self.parameters.values()]

    def node_classes(self) -> dict[str, list[str]]:
        """class_type -> node ids, for checking against a server's ``/object_info``."""
        out: dict[str, list[str]] = {}
        for nid, node in self.nodes.items():
            out.setdefault(node["class_type"], []).append(nid)
        return out

    def fingerprint(self) -> str:
        """A stable hash of the nodes, so a job id changes when the workflow does.

        Hashed once per nodes object (a remote workflow's fetched nodes replace it): every job's
        record and every executor's type cache ask for it, and hashing the whole workflow per job
        was a measurable share of the client's CPU.
        """
        memo = self._fingerprint
        if memo is not None and memo[0] is self.nodes:
            return memo[1]
        meta = {k: v for k, v in self.meta.items() if k != "_fetched"}  # remote ids count; a fetch flag never did
        blob = json.dumps([self.nodes, meta], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(blob.encode()).hexdigest()
        self._fingerprint = (self.nodes, digest)  # a race between threads only computes the same value twice
        return digest

    # -- binding -------------------------------------------------------------
    def check_params(self, params: Mapping[str, Any]) -> None:
        """Refuse unknown and missing parameters, naming what is known."""
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            known = ", ".join(sorted(self.parameters)) or "(none: the workflow has no $ markers)"
            close = difflib.get_close_matches(unknown[0], list(self.parameters), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}{hint} "
                f"for {self.source}; known: {known}"
            )
        missing = [p for p in self.parameters.values() if p.required and p.name not in params]
        if missing:
            where = "; ".join(
                f"{p.name} ({', '.join(f'node {n}.{f}' for n, f in p.targets)})" for p in missing
            )
            raise ParameterError(f"missing required parameter{'s' if len(missing) > 1 else ''} for {self.source}: {where}")

    def type_of(self, name: str, types: Mapping[str, InputType] | None = None) -> InputType:
        """The type ``name`` is checked against: the server's when ``types`` has it, else the workflow's."""
        p = self.parameters[name]
        if p.upload:
            return UPLOAD_TYPE
        return (types or {}).get(name) or p.input_type

    def check_value(self, name: str, value: Any, types: Mapping[str, InputType] | None = None) -> Any:
        """The value as it would be submitted (coerced), or ``ParameterError`` in one line.

        Lets a batch check every distinct swept value before its first job. A seed's
        "random" is returned as is (the number is drawn at bind time); an upload's
        value is classified (a missing local file is refused) and returned unchanged.
        """
        if name not in self.parameters:
            self.check_params({name: value})  # raises: unknown, naming the known ones
        p = self.parameters[name]
        if p.upload:
            classify(value, name)
            return value
        if p.is_seed and value == RANDOM_SEED:
            return value
        return coerce(value, name, self.type_of(name, types))

    def bind(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        types: Mapping[str, InputType] | None = None,
        rng: random.Random | None = None,
    ) -> BoundPrompt:
        """Check, coerce and apply ``params`` (against a server's ``types`` if given); uploads stay pending."""
        params = dict(params or {})
        self.check_params(params)
        prompt = _json_copy(self.nodes)
        values: JsonDict = {}
        uploads: list[PendingUpload] = []
        for name, raw in params.items():
            p = self.parameters[name]
            if p.upload:
                uploads.append(PendingUpload(name, classify(raw, name), list(p.targets)))
                continue
            if p.is_seed and raw == RANDOM_SEED:
                value: Any = (rng or random.SystemRandom()).randint(0, SEED_MAX)
            else:
                value = coerce(raw, name, self.type_of(name, types))
            values[name] = value
            for nid, fld in p.targets:
                prompt[nid].setdefault("inputs", {})[fld] = value
        return BoundPrompt(self, prompt, values, uploads, self._seeds(prompt))

    def _seeds(self, prompt: JsonDict) -> dict[str, int]:
        """Every literal seed of the prompt, by parameter name (or node.field), so a run can be repeated."""
        seeds: dict[str, int] = {}
        for nid, node in prompt.items():
            for fld in SEED_FIELDS & set(node.get("inputs", {})):
                v = node["inputs"][fld]
                if isinstance(v, int) and not isinstance(v, bool):
                    owner = next((p.name for p in self.parameters.values() if (nid, fld) in p.targets), None)
                    seeds[owner or f"{nid}.{fld}"] = v
        return seeds


def _class_inputs(object_info: Mapping[str, Any], class_type: str) -> Mapping[str, Any] | None:
    """A class's ``input`` entry in ``/object_info`` ({} when it has none); None when the class is not described."""
    info = object_info.get(class_type) if isinstance(object_info, Mapping) else None
    if not isinstance(info, Mapping):
        return None
    inputs = info.get("input")
    return inputs if isinstance(inputs, Mapping) else {}


def _section(inputs: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = inputs.get(name)
    return section if isinstance(section, Mapping) else {}


def _input_spec(object_info: Mapping[str, Any], class_type: str, field_name: str) -> Any:
    inputs = _class_inputs(object_info, class_type) or {}
    for section in ("required", "optional"):
        spec = _section(inputs, section).get(field_name)
        if spec is not None:
            return spec
    return None


def _server_inputs(object_info: Mapping[str, Any], class_type: str) -> tuple[list[str], str | None] | None:
    """(input names a server lists for a class, why that list may be incomplete or None); None: class not described.

    Incomplete: no required input (nodes that take whatever inputs the browser added list only
    optional ones, often none, or no inputs section), or a V3 dynamic input (its keys are made per workflow).
    """
    inputs = _class_inputs(object_info, class_type)
    if inputs is None:
        return None
    required, optional = (_section(inputs, s) for s in ("required", "optional"))
    names = [str(k) for k in (*required, *optional)]
    if not required:
        return names, f"{class_type} lists no required input, so it may take inputs added in the browser"
    for spec in (*required.values(), *optional.values()):
        kind = spec[0] if isinstance(spec, (list, tuple)) and spec else None
        if isinstance(kind, str) and kind in DYNAMIC_KINDS:
            return names, f"{class_type} has a dynamic input ({kind})"
    return names, None


def _grown(field_name: str, names: list[str]) -> str | None:
    """Why ``field_name`` may be a numbered copy the browser added (``image_3`` beside ``image_1``), or None."""
    m = re.fullmatch(r"(.*?)\d+", field_name)
    if not m:
        return None
    sibling = next((n for n in names if re.fullmatch(re.escape(m[1]) + r"\d+", n)), None)
    return f"numbered inputs like {sibling!r} may be added in the browser" if sibling else None


def _marker_text(name: str, field_name: str) -> str:
    """How the title spells a marker (``$w.Width``, or ``$width`` for a field named as its parameter)."""
    return f"${name}" + ("" if field_name == name else f".{field_name}")


def _suggest(wrong: str, names: list[str]) -> str:
    """`` (did you mean 'width'?)``: a name differing only in case first, else the closest one, else nothing."""
    same = [n for n in names if n.lower() == wrong.lower()]
    close = same or difflib.get_close_matches(wrong, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- coercion ------------------------------------------------------------------------------
YAML_BOOL_HINT = "quote it ('yes', 'no', 'on', 'off' are booleans in YAML)"


def _show(value: Any) -> str:
    """A value for an error message: short, and a URL's query (signed tokens) left out."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        value = redact_url(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(name: str, t: InputType, value: Any, why: str = "") -> ParameterError:
    return ParameterError(f"parameter {name!r} expects {t.type}{why}, got {type(value).__name__} {_show(value)}")


def coerce(value: Any, name: str, t: InputType) -> Any:
    """``value`` converted to type ``t`` when nothing is lost; ``ParameterError`` otherwise."""
    if t.type == "upload":
        return value
    if isinstance(value, bool) and t.type in ("str", "choice"):
        raise ParameterError(f"parameter {name!r} expects {t.type}, got the YAML boolean {value}: {YAML_BOOL_HINT}")
    if t.type == "choice":
        return _coerce_choice(value, name, t)
    if t.type == "str":
        return _coerce_str(value, name, t)
    if t.type == "bool":
        return _coerce_bool(value, name, t)
    if t.type == "any":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_finite(value, name, t)
        return value
    return _coerce_number(value, name, t)


def _coerce_choice(value: Any, name: str, t: InputType) -> Any:
    choices = t.choices or ()
    if value in choices:
        return value
    if isinstance(value, (int, float)) and str(value) in choices:
        return str(value)  # an unquoted 512 for the choice "512"
    strings = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(str(value), strings, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(_show(c) for c in choices[:8]) + (f", ... ({len(choices)} in all)" if len(choices) > 8 else "")
    where = "the server's" if t.origin == "server" else "the"
    raise ParameterError(f"parameter {name!r}: {_show(value)} is not one of {where} choices{hint}; valid: {shown or '(none)'}")


def _coerce_str(value: Any, name: str, t: InputType) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise _refuse(name, t, value)


def _coerce_bool(value: Any, name: str, t: InputType) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise _refuse(name, t, value)


def _coerce_number(value: Any, name: str, t: InputType) -> int | float:
    """int, float or number (a literal's kind unknown): parse strings, refuse lossy and out-of-range values."""
    if isinstance(value, bool):
        raise _refuse(name, t, value)
    if isinstance(value, str):
        value = _parse_number(value, name, t)
    if not isinstance(value, (int, float)):
        raise _refuse(name, t, value)
    _check_finite(value, name, t)
    if t.type == "int" and isinstance(value, float):
        if not value.is_integer():
            raise _refuse(name, t, value, " (a whole number)")
        value = int(value)
    elif t.type == "float":
        value = float(value)
    _check_range(value, name, t)
    return value


def _parse_number(text: str, name: str, t: InputType) -> int | float:
    try:
        return int(text.strip())
    except ValueError:
        try:
            return float(text.strip())
        except ValueError:
            raise _refuse(name, t, text) from None


def _check_finite(value: int | float, name: str, t: InputType) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _refuse(name, t, value, " (a finite number)")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise ParameterError(
            f"parameter {name!r}: {_show(value)} does not fit in a signed 64-bit integer "
            f"({INT64_MIN} to {INT64_MAX}), the widest the server accepts"
        )


def _check_range(value: int | float, name: str, t: InputType) -> None:
    if (t.min is None or value >= t.min) and (t.max is None or value <= t.max):
        return
    if t.min is not None and t.max is not None:
        limits = f"between {t.min} and {t.max}"
    else:
        limits = f"at least {t.min}" if t.min is not None else f"at most {t.max}"
    source = " (the server's limits)" if t.origin == "server" else ""
    raise ParameterError(f"parameter {name!r} must be {limits}{source}, got {_show(value)}")


@dataclass
class PendingUpload:
    """An upload parameter's value, to be sent to the server before the prompt."""

    name: str
    source: UploadSource
    targets: list[tuple[str, str]]


@dataclass
class BoundPrompt:
    """A workflow with its parameters applied: ready to submit once uploads are done."""

    workflow: Workflow
    prompt: JsonDict
    values: JsonDict
    uploads: list[PendingUpload] = field(default_factory=list)
    seeds: dict[str, int] = field(default_factory=dict)

    def with_uploads(self, names: Mapping[str, str]) -> JsonDict:
        """The prompt with each upload parameter set to the file name the server gave it."""
        if not self.uploads:
            return self.prompt
        prompt = _json_copy(self.prompt)
        for up in self.uploads:
            for nid, fld in up.targets:
                prompt[nid].setdefault("inputs", {})[fld] = names[up.name]
        for up in self.uploads:
            self.values[up.name] = names[up.name]
        return prompt
