"""``ExecuteResult`` and the pieces it is built from, shared by every executor.

The fields of the seed API are kept as they were (URL lists, ``*_by_var``,
``status`` "completed"/"failed"); the structured extras (``files``, ``failure``,
``seeds``) are what the batch runner and logs need to say what happened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from .errors import AuthError, BackendError, ComfyKitError, ConfigError, InputFileError, MissingNodesError

Kind = Literal["image", "video", "audio", "text", "file"]

#: Why a job failed. The table below gives each kind's meaning and whether it is transient by default
#: (running the job again, later or on another backend, may succeed): the runner retries those and
#: re-runs them on the next invocation. A failure overrides the default only where it says so.
FailureKind = Literal[
    "connection", "server", "timeout", "cancelled", "interrupted", "uncertain", "rejected", "validation",
    "execution", "missing_output", "remote", "upload", "auth", "invalid", "config", "client", "storage",
]


@dataclass(frozen=True)
class KindInfo:
    """One failure kind: transient by default, whether it pauses the backend (it may come back), and what it means."""

    transient: bool
    pauses_backend: bool
    meaning: str


#: the one table of failure kinds; README's list and the docstrings are checked against it
FAILURE_KINDS: dict[str, KindInfo] = {
    "connection": KindInfo(True, True, "the backend could not be reached, dropped us, or answered 5xx/429"),
    "server": KindInfo(True, True, "the server lost the prompt (restarted, queue cleared)"),
    "timeout": KindInfo(True, False, "the call's time limit passed; the remote job was interrupted or cancelled"),
    "cancelled": KindInfo(True, False, "the caller set the cancel event; the remote job was interrupted or cancelled"),
    "interrupted": KindInfo(True, False, "someone interrupted the prompt on the server"),
    "uncertain": KindInfo(False, False, "a create request got no answer; the task may exist, so it was not sent again"),
    "rejected": KindInfo(False, False, "the server refused the prompt (HTTP 400: invalid prompt, unknown node)"),
    "validation": KindInfo(False, False, "some outputs failed validation (200 with node_errors); the rest was stopped"),
    "execution": KindInfo(False, False, "a node raised (node id, class and exception in the failure)"),
    "missing_output": KindInfo(False, False, "a declared $output.NAME node produced no file or text"),
    "remote": KindInfo(False, False, "RunningHub answered a non-zero code (transient for codes 415 and 421)"),
    "upload": KindInfo(False, False, "an input file could not be read or uploaded"),
    "auth": KindInfo(False, False, "credentials missing or refused (401/403, a redirect, RunningHub 802)"),
    "invalid": KindInfo(False, False, "the job's parameters do not fit the workflow or the server's types"),
    "config": KindInfo(False, False, "no backend may run this workflow, or a setting is missing"),
    "client": KindInfo(False, False, "this machine failed (a bug); see the message"),
    "storage": KindInfo(True, False, "an output file could not be written (disk full, read-only): the run stops, "
                                     "and the job runs again on the next invocation"),
}


IMAGE_EXT = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tiff", ".tif"})
VIDEO_EXT = frozenset({".mp4", ".mov", ".avi", ".webm", ".gif", ".mkv"})
AUDIO_EXT = frozenset({".mp3", ".wav", ".flac", ".ogg", ".aac", ".m4a", ".opus"})


def kind_of(filename: str, hint: str = "") -> Kind:
    """Media kind by extension; an unknown extension is a plain file, never dropped."""
    ext = os.path.splitext(filename)[1].lower()
    if ext in IMAGE_EXT:
        return "image"
    if ext in VIDEO_EXT:
        return "video"
    if ext in AUDIO_EXT:
        return "audio"
    hint = hint.lower()
    for k in ("image", "video", "audio"):
        if k in hint:
            return k
    return "file"


@dataclass(frozen=True)
class OutputFile:
    """One file a workflow produced, where to fetch it, and which output it belongs to."""

    url: str
    filename: str
    kind: Kind
    var: str
    node_id: str
    subfolder: str = ""
    type: str = "output"  # ComfyUI: output | temp | input

    @property
    def is_temp(self) -> bool:
        return self.type == "temp"


@dataclass
class Failure:
    """Why a job failed, in parts a program can act on.

    ``transient`` says whether running the same job again may succeed
    (connection lost, server restarted, timeout), as opposed to a node that
    raised or a prompt the server rejected.
    """

    kind: FailureKind  # see FAILURE_KINDS for each kind's meaning and whether it is transient
    message: str
    transient: bool | None = None  # None: the kind's default (FAILURE_KINDS)
    node_id: str | None = None
    node_type: str | None = None
    exception_type: str | None = None
    traceback: str | None = None
    code: int | None = None

    def __post_init__(self) -> None:
        if self.transient is None:
            self.transient = FAILURE_KINDS[self.kind].transient

    @property
    def reason(self) -> str:
        """A short key to group failures by: the failing node and exception type, not the per-job message."""
        if self.kind == "execution" and self.node_id is not None:
            return f"execution: node {self.node_id} ({self.node_type}) raised {self.exception_type}"
        return f"{self.kind}: {self.message}"[:160]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def failure_of(exc: ComfyKitError, message: str | None = None) -> Failure:
    """The failure a job gets for one of this package's exceptions: the one mapping from errors to kinds.

    ``auth`` (final: a batch stops sending jobs to that backend) for refused credentials, a
    redirect to a login page included, wherever in the job it came; ``connection`` for other
    backend trouble (transient as the error says); ``config`` for a backend that may not run
    the workflow or a missing setting; ``invalid`` for bad input (workflow or parameters).
    """
    text = str(exc) if message is None else message
    if isinstance(exc, AuthError):
        return Failure("auth", text)
    if isinstance(exc, BackendError):
        return Failure("connection", text, transient=exc.transient)
    if isinstance(exc, InputFileError):  # a file gone since the run's checks: this job's upload failed
        return Failure("upload", text, exception_type=type(exc).__name__)
    kind: FailureKind = "config" if isinstance(exc, (ConfigError, MissingNodesError)) else "invalid"
    return Failure(kind, text, exception_type=type(exc).__name__)


@dataclass
class ExecuteResult:
    """What one workflow execution produced (the seed's fields, plus structured extras)."""

    status: str  # "completed" or "failed"
    prompt_id: str | None = None
    duration: float | None = None
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    audios: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    images_by_var: dict[str, list[str]] = field(default_factory=dict)
    videos_by_var: dict[str, list[str]] = field(default_factory=dict)
    audios_by_var: dict[str, list[str]] = field(default_factory=dict)
    texts_by_var: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    msg: str | None = None
    # Extras beyond the seed API.
    previews: list[str] = field(default_factory=list)  # temp images (PreviewImage): not saved outputs
    previews_by_var: dict[str, list[str]] = field(default_factory=dict)
    files: list[OutputFile] = field(default_factory=list)  # every file, unknown kinds included
    failure: Failure | None = None
    seeds: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # the values actually submitted
    backend: str | None = None
    cost: dict[str, Any] | None = None  # RunningHub: taskCostTime, consumeCoins
    ignored_params: list[str] = field(default_factory=list)  # names the workflow does not have (ComfyKit's lenient mode)

    #: the published comfykit's ``ExecuteResult`` fields, in its declaration order (its ``model_dump`` keys)
    SEED_FIELDS: ClassVar[tuple[str, ...]] = (
        "status", "prompt_id", "duration", "images", "images_by_var", "audios", "audios_by_var",
        "videos", "videos_by_var", "texts", "texts_by_var", "outputs", "msg",
    )

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    # -- the published package's pydantic surface -------------------------------------
    def model_dump(
        self,
        *,
        mode: Literal["python", "json"] = "python",
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        exclude_none: bool = False,
        extras: bool = False,
    ) -> dict[str, Any]:
        """The result as a dict, as comfykit's pydantic ``model_dump`` gives it: its 13 fields in its order.

        ``extras=True`` adds this package's fields (``files``, ``failure``, ``seeds``, ...) after them.
        ``mode="json"`` gives only JSON types (``OutputFile``/``Failure`` become dicts either way).
        """
        names = self.SEED_FIELDS + (tuple(f.name for f in fields(self) if f.name not in self.SEED_FIELDS) if extras else ())
        out: dict[str, Any] = {}
        for name in names:
            if (include is not None and name not in include) or (exclude is not None and name in exclude):
                continue
            value = _plain(getattr(self, name))
            if value is None and exclude_none:
                continue
            out[name] = value
        return json.loads(json.dumps(out, default=str)) if mode == "json" else out

    def model_dump_json(
        self,
        *,
        indent: int | None = None,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        exclude_none: bool = False,
        extras: bool = False,
    ) -> str:
        """``model_dump`` as JSON text, byte for byte what pydantic writes for comfykit's model."""
        data = self.model_dump(include=include, exclude=exclude, exclude_none=exclude_none, extras=extras)
        separators = (",", ": ") if indent is not None else (",", ":")
        return json.dumps(data, indent=indent, separators=separators, ensure_ascii=False, default=str)

    @classmethod
    def model_validate(cls, obj: Mapping[str, Any] | ExecuteResult) -> ExecuteResult:
        """A result from a dict (comfykit's ``model_dump`` or ours with extras); unknown keys are ignored, as pydantic does.

        Raises ``ValueError`` naming the field when a value has the wrong shape.
        """
        if isinstance(obj, ExecuteResult):
            return obj
        if not isinstance(obj, Mapping):
            raise ValueError(f"ExecuteResult expects a mapping, got {type(obj).__name__}")
        if not isinstance(obj.get("status"), str):
            raise ValueError("ExecuteResult.status: a string is required")
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if obj.get(f.name) is not None:
                kw[f.name] = _field_value(f.name, obj[f.name])
        return cls(**kw)

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> ExecuteResult:
        """``model_validate`` of a JSON document."""
        return cls.model_validate(json.loads(data))

    @classmethod
    def failed(cls, failure: Failure, **kw: Any) -> ExecuteResult:
        return cls(status="failed", msg=failure.message, failure=failure, **kw)

    def add_file(self, f: OutputFile) -> None:
        """File one output under its kind and variable (temp images go to previews)."""
        self.files.append(f)
        if f.kind == "image" and f.is_temp:
            self.previews.append(f.url)
            self.previews_by_var.setdefault(f.var, []).append(f.url)
            return
        lists = {
            "image": (self.images, self.images_by_var),
            "video": (self.videos, self.videos_by_var),
            "audio": (self.audios, self.audios_by_var),
        }.get(f.kind)
        if lists:
            lists[0].append(f.url)
            lists[1].setdefault(f.var, []).append(f.url)

    def add_text(self, var: str, text: str) -> None:
        self.texts.append(text)
        self.texts_by_var.setdefault(var, []).append(text)


def _plain(value: Any) -> Any:
    """Copies of lists and dicts (a dump never aliases the result), dataclasses as dicts."""
    if isinstance(value, Failure):
        return value.to_dict()
    if isinstance(value, OutputFile):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _field_value(name: str, value: Any) -> Any:
    """One field of ``model_validate``: lists of str, dicts of lists of str, numbers coerced as pydantic would."""
    if value is None:
        return None
    try:
        if name == "duration":
            return float(value)
        if name in ("prompt_id", "msg", "backend"):
            return str(value)
        if name == "failure":
            return value if isinstance(value, Failure) else Failure(**value)
        if name == "files":
            return [v if isinstance(v, OutputFile) else OutputFile(**v) for v in value]
        if name.endswith("_by_var"):
            return {str(k): [str(v) for v in vs] for k, vs in dict(value).items()}
        if name in ("images", "videos", "audios", "texts", "previews", "ignored_params"):
            return [str(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ExecuteResult.{name}: {exc}") from exc
    return value
