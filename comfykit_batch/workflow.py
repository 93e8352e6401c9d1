"""The workflow model: load an API-format workflow, read its DSL parameters, bind values.

Nothing here touches the network. Binding checks every name and value before an
executor submits anything, so a typo fails in one line instead of as a 400 from
the server (or worse, silently runs the default).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dsl import OutputMarker, ParamMarker, parse_title
from .errors import ParameterError, WorkflowError
from .uploads import UploadSource, classify

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

JsonDict = dict[str, Any]


@dataclass
class Parameter:
    """One named parameter of a workflow and the node inputs it sets."""

    name: str
    targets: list[tuple[str, str]]
    required: bool = False
    upload: bool = False
    default: Any = None
    has_default: bool = False
    type: str = "any"
    description: str | None = None
    choices: list[Any] | None = None

    @property
    def is_seed(self) -> bool:
        return self.name in SEED_FIELDS or any(f in SEED_FIELDS for _, f in self.targets)

    def to_dict(self) -> JsonDict:
        return {
            "name": self.name,
            "nodes": [f"{nid}.{fld}" for nid, fld in self.targets],
            "required": self.required,
            "upload": self.upload,
            "default": self.default if self.has_default else None,
            "type": self.type,
            "description": self.description,
        }


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
        self.meta: JsonDict = {k: v for k, v in data.items() if k.startswith("_")}
        self.nodes: JsonDict = {}
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
        if fetched:
            self.meta["_fetched"] = True
        self._parse_dsl()

    # -- loading -----------------------------------------------------------
    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "<json>") -> Workflow:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorkflowError(f"{source}: not valid JSON ({exc})") from None
        return cls(data, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> Workflow:
        p = Path(path).expanduser()
        try:
            text = p.read_bytes()
        except FileNotFoundError:
            raise WorkflowError(f"{p}: no such workflow file") from None
        except OSError as exc:
            raise WorkflowError(f"{p}: cannot read the workflow ({exc.strerror})") from None
        return cls.from_json(text, source=str(p))

    # -- DSL -----------------------------------------------------------------
    def _parse_dsl(self) -> None:
        for nid, node in self.nodes.items():
            title = (node.get("_meta") or {}).get("title") or ""
            if not isinstance(title, str):
                continue
            inputs = node.get("inputs", {})
            for marker in parse_title(title, nid):
                if isinstance(marker, OutputMarker):
                    self.output_names[nid] = marker.name
                    continue
                assert isinstance(marker, ParamMarker)
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

    def refine_types(self, object_info: Mapping[str, Any]) -> None:
        """Use the server's input specs (``/object_info``) for exact types and choice lists."""
        for p in self.parameters.values():
            for nid, fld in p.targets:
                spec = _input_spec(object_info, self.nodes[nid]["class_type"], fld)
                if spec is None:
                    continue
                kind = spec[0] if isinstance(spec, (list, tuple)) and spec else None
                if isinstance(kind, list):
                    if not p.upload:
                        p.type, p.choices = "choice", list(kind)
                elif kind == "COMBO":
                    opts = (spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}).get("options")
                    if isinstance(opts, list) and not p.upload:
                        p.type, p.choices = "choice", opts
                elif kind in ("INT", "FLOAT", "STRING", "BOOLEAN") and not p.upload:
                    p.type = {"INT": "int", "FLOAT": "float", "STRING": "str", "BOOLEAN": "bool"}[kind]
                break

    def node_classes(self) -> dict[str, list[str]]:
        """class_type -> node ids, for checking against a server's ``/object_info``."""
        out: dict[str, list[str]] = {}
        for nid, node in self.nodes.items():
            out.setdefault(node["class_type"], []).append(nid)
        return out

    def fingerprint(self) -> str:
        """A stable hash of the nodes, so a job id changes when the workflow does."""
        meta = {k: v for k, v in self.meta.items() if k != "_fetched"}  # remote ids count, fetch state does not
        blob = json.dumps([self.nodes, meta], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    # -- binding -------------------------------------------------------------
    def check_params(self, params: Mapping[str, Any]) -> None:
        """Refuse unknown and missing parameters, naming what is known."""
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            known = ", ".join(sorted(self.parameters)) or "(none: the workflow has no $ markers)"
            raise ParameterError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"for {self.source}; known: {known}"
            )
        missing = [p for p in self.parameters.values() if p.required and p.name not in params]
        if missing:
            where = "; ".join(
                f"{p.name} ({', '.join(f'node {n}.{f}' for n, f in p.targets)})" for p in missing
            )
            raise ParameterError(f"missing required parameter{'s' if len(missing) > 1 else ''} for {self.source}: {where}")

    def bind(self, params: Mapping[str, Any] | None = None, *, rng: random.Random | None = None) -> BoundPrompt:
        """Check, coerce and apply ``params``; uploads stay pending for the executor."""
        params = dict(params or {})
        self.check_params(params)
        prompt = _json_copy(self.nodes)
        values: JsonDict = {}
        uploads: list[PendingUpload] = []
        seeds: dict[str, int] = {}
        for name, raw in params.items():
            p = self.parameters[name]
            if p.upload:
                uploads.append(PendingUpload(name, classify(raw, name), list(p.targets)))
                continue
            if p.is_seed and raw == RANDOM_SEED:
                value: Any = (rng or random.SystemRandom()).randint(0, SEED_MAX)
            else:
                value = coerce(raw, p)
            values[name] = value
            for nid, fld in p.targets:
                prompt[nid].setdefault("inputs", {})[fld] = value
        for nid, node in prompt.items():
            for fld in SEED_FIELDS & set(node.get("inputs", {})):
                v = node["inputs"][fld]
                if isinstance(v, int) and not isinstance(v, bool):
                    owner = next((p.name for p in self.parameters.values() if (nid, fld) in p.targets), None)
                    seeds[owner or f"{nid}.{fld}"] = v
        return BoundPrompt(self, prompt, values, uploads, seeds)


def _input_spec(object_info: Mapping[str, Any], class_type: str, field_name: str) -> Any:
    info = object_info.get(class_type)
    if not isinstance(info, Mapping):
        return None
    inputs = info.get("input") or {}
    for section in ("required", "optional"):
        spec = (inputs.get(section) or {}).get(field_name)
        if spec is not None:
            return spec
    return None


def coerce(value: Any, p: Parameter) -> Any:
    """Convert ``value`` to the parameter's type when nothing is lost; refuse otherwise."""
    t = p.type

    def refuse(why: str = "") -> ParameterError:
        return ParameterError(
            f"parameter {p.name!r} expects {t}{why}, got {type(value).__name__} {value!r}"
        )

    if t in ("any", "upload"):
        return value
    if t == "choice":
        if value in (p.choices or []):
            return value
        shown = ", ".join(map(repr, (p.choices or [])[:10])) + (" ..." if len(p.choices or []) > 10 else "")
        raise ParameterError(f"parameter {p.name!r}: {value!r} is not one of the server's choices: {shown}")
    if isinstance(value, bool) and t != "bool":
        raise refuse()
    if t == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            return str(value)
        raise refuse()
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        raise refuse()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise refuse() from None
    if not isinstance(value, (int, float)):
        raise refuse()
    if t == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise refuse(" (a whole number)")
            return int(value)
        return value
    if t == "float":
        return float(value)
    return value  # "number": a literal number of unknown kind, keep as given


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
