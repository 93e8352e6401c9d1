"""What an output folder says about its batch right now: counts, failures by reason, rate, backends, who holds it.

Read only through the store's read-only view (``FolderView``: sqlite read-only, the journal's tail,
the shards' parts folded) and the runs' ``run.json``, so it works beside a running batch, after a
kill and before a merge, and never takes the run's lock. A remote folder (``s3://...``) is pulled
through the store's mirror into a temporary folder of its own (never the run's local side, which a
run on this machine may be using). The ETA is not computed here: it is the run room's rule
(``batch.run.eta``), which the command line applies to ``left`` and ``rate``.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ...result import Failure
from ..spec.location import is_remote_folder
from .index_db import UnreadableIndex
from .layout import INDEX, PARTS
from .remote import Mirror, RemoteFolder
from .run_state import RUN_STATE, Holding, RunState, holding, run_states
from .view import FolderView

WINDOW = 300.0  # seconds of records the rate is measured over
LAST_FAILURES = 5
HOLDS: tuple[Holding, ...] = ("running", "elsewhere")


@dataclass(frozen=True)
class FailedJob:
    """One failed job, as the list of the latest failures shows it."""

    id: str
    workflow: str | None
    backend: str | None
    finished: float | None
    reason: str


@dataclass(frozen=True)
class BackendLoad:
    """One backend's share: its jobs and failures (all records), busy share over the window, the models it last ran."""

    name: str
    jobs: int
    failed: int
    busy: float | None  # share of the window with at least one of its jobs executing; None: no window
    models: list[str] | None  # its last record's ``models`` (absent in older folders)


@dataclass(frozen=True)
class Rate:
    """Jobs finished per second over ``window`` seconds ending at ``until`` (now while a run holds the folder)."""

    per_second: float
    window: float
    jobs: int
    until: float | None


@dataclass(frozen=True)
class RunView:
    """A run state and what it means from here; ``stopped_at``: the last record's time, for a run that was killed."""

    state: RunState
    holding: Holding
    stopped_at: float | None = None


@dataclass(frozen=True)
class FolderStatus:
    """Everything ``status`` shows of one output folder at ``now``."""

    location: str
    name: str
    now: float
    completed: int
    failed: int
    total: int | None  # the jobs the current run(s) expect; None without a run state
    failures: list[tuple[str, int]]  # reason -> jobs, most first
    last_failures: list[FailedJob]
    backends: list[BackendLoad]
    rate: Rate
    runs: list[RunView]

    @property
    def held(self) -> bool | None:
        """A run holds the folder (on another host: as far as its file says); None without any run state."""
        return any(r.holding in HOLDS for r in self.runs) if self.runs else None

    @property
    def since(self) -> float | None:
        """When the earliest run holding the folder started."""
        return min((r.state.started for r in self.runs if r.holding in HOLDS), default=None)

    @property
    def left(self) -> int | None:
        """Jobs the current run(s) expect and the folder does not hold yet: pending while held, else not run."""
        return None if self.total is None else max(0, self.total - self.completed - self.failed)

    def to_dict(self, eta: float | None) -> dict[str, Any]:
        """The ``--json`` document (``schemas/status.schema.json``); ``eta``: seconds, from the run room's rule."""
        left, held = self.left, self.held
        return {
            "folder": self.location, "name": self.name, "now": self.now, "total": self.total,
            "completed": self.completed, "failed": self.failed,
            "pending": left if held else None, "not_run": None if held else left,
            "failures": [{"reason": reason, "jobs": n} for reason, n in self.failures],
            "rate": {"per_second": self.rate.per_second, "window": self.rate.window, "jobs": self.rate.jobs,
                     "until": self.rate.until},
            "eta": eta,
            "backends": [asdict(b) for b in self.backends],
            "last_failures": [asdict(f) for f in self.last_failures],
            "run": {"held": held, "since": self.since, "runs": [_run_dict(r) for r in self.runs]},
        }


def failure_reason(error: Mapping[str, Any] | None) -> str:
    """The key failures are grouped by, as the runner's summary groups them (``Failure.reason``)."""
    if not error:
        return "unknown: no error recorded"
    failure = Failure(str(error.get("kind") or "unknown"), str(error.get("message") or ""),  # type: ignore[arg-type]
                      transient=bool(error.get("transient")), node_id=error.get("node_id"),
                      node_type=error.get("node_type"), exception_type=error.get("exception_type"))
    return failure.reason


@contextmanager
def opened(output: str | Path) -> Iterator[tuple[Path, str]]:
    """``(a local folder to read, the folder as it may be shown)``; a remote one is pulled into a temporary copy."""
    if not is_remote_folder(output):
        if not Path(output).is_dir():
            raise UsageError(f"{output}: no such output folder")
        yield Path(output), str(output)
        return
    remote = RemoteFolder(str(output))
    with tempfile.TemporaryDirectory(prefix="comfykit-status-") as tmp:
        root = Path(tmp)
        Mirror(remote, root, root).pull()
        _pull_run_states(remote, root)
        yield root, str(remote)


def folder_status(output: str | Path, *, now: float | None = None, window: float = WINDOW, host: str | None = None,
                  alive: Callable[[int], bool] | None = None) -> FolderStatus:
    """The status of the output folder ``output`` (a path or a remote URL); not an output folder: ``UsageError``.

    ``now``, ``host`` and ``alive`` (is a pid alive on this host) are injectable for tests.
    """
    with opened(output) as (root, shown):
        view, states = FolderView(root), run_states(root)
        if not (view.exists() or states):
            raise UsageError(f"{shown}: no {INDEX} here; give the output folder of a batch (output/<name>)")
        try:
            records = view.records()
        except UnreadableIndex as exc:
            raise UsageError(str(exc)) from None
        return measure(records, states, location=shown, name=view.name(), now=time.time() if now is None else now,
                       window=window, host=host, alive=alive)


def measure(records: Sequence[Mapping[str, Any]], states: Sequence[RunState], *, location: str, name: str, now: float,
            window: float = WINDOW, host: str | None = None, alive: Callable[[int], bool] | None = None) -> FolderStatus:
    """The status from records (as the view gives them) and run states: pure, so tests need no folder."""
    current = _current(states)
    last = max((_finished(r) for r in records), default=0.0)
    runs = [_view(s, last, host, alive) for s in current]
    held = any(r.holding in HOLDS for r in runs)
    span = _span(records, runs, now, window, held)
    failed = [r for r in records if r.get("status") == "failed"]
    return FolderStatus(
        location=location, name=name, now=now, completed=sum(1 for r in records if r.get("status") == "completed"),
        failed=len(failed), total=sum(s.total for s in current) if current else None,
        failures=Counter(failure_reason(r.get("error")) for r in failed).most_common(),
        last_failures=[_failed_job(r) for r in sorted(failed, key=_finished, reverse=True)[:LAST_FAILURES]],
        backends=_backends(records, span), rate=_rate(records, span), runs=runs)


def _current(states: Sequence[RunState]) -> list[RunState]:
    """The run(s) the folder is about now: its own run if it started last, else the shards' (one per part)."""
    own = [s for s in states if s.part is None]
    parts = [s for s in states if s.part is not None]
    if own and (not parts or own[0].started >= max(p.started for p in parts)):
        return own
    return parts


def _view(state: RunState, last: float, host: str | None, alive: Callable[[int], bool] | None) -> RunView:
    how = holding(state, host=host, alive=alive)
    return RunView(state, how, max(last, state.started) if how == "stopped" else None)


def _span(records: Sequence[Mapping[str, Any]], runs: Sequence[RunView], now: float, window: float,
          held: bool) -> tuple[float, float] | None:
    """The rate's window: the last ``window`` seconds up to now while a run holds the folder (never before it
    started), else up to the last record (the rate the batch ended at); None when nothing finished."""
    end = now if held else max((_finished(r) for r in records), default=None)
    if not end:
        return None
    if held:
        bound = min(r.state.started for r in runs if r.holding in HOLDS)
    else:
        bound = max((r.state.started for r in runs if r.state.started <= end), default=end - window)
    return max(end - window, bound), end


def _rate(records: Sequence[Mapping[str, Any]], span: tuple[float, float] | None) -> Rate:
    if span is None:
        return Rate(0.0, 0.0, 0, None)
    start, end = span
    n = sum(1 for r in records if start < _finished(r) <= end)
    return Rate(n / (end - start) if end > start else 0.0, round(end - start, 3), n, end)


def _backends(records: Sequence[Mapping[str, Any]], span: tuple[float, float] | None) -> list[BackendLoad]:
    by: dict[str, list[Mapping[str, Any]]] = {}
    for rec in sorted(records, key=_finished):
        by.setdefault(str(rec.get("backend") or "-"), []).append(rec)
    return [BackendLoad(name, len(recs), sum(1 for r in recs if r.get("status") == "failed"), _busy(recs, span),
                        list(recs[-1].get("models") or []) or None)
            for name, recs in sorted(by.items())]


def _busy(records: Sequence[Mapping[str, Any]], span: tuple[float, float] | None) -> float | None:
    """The share of the window in which at least one of these jobs was executing (``finished - duration`` to
    ``finished``): the union, so two prompts in flight at once do not count the same second twice."""
    if span is None or span[1] <= span[0]:
        return None
    start, end = span
    spans = sorted((max(start, f - float(r["duration"])), min(end, f)) for r in records
                   if r.get("duration") is not None and (f := _finished(r)) > start)
    busy, reach = 0.0, start
    for lo, hi in spans:
        if hi > reach:
            busy += hi - max(lo, reach)
            reach = hi
    return round(min(1.0, busy / (end - start)), 4)


def _finished(rec: Mapping[str, Any]) -> float:
    value = rec.get("finished")
    return float(value) if isinstance(value, (int, float)) else 0.0


def _failed_job(rec: Mapping[str, Any]) -> FailedJob:
    return FailedJob(str(rec.get("id")), rec.get("workflow"), rec.get("backend"), rec.get("finished"),
                     failure_reason(rec.get("error")))


def _run_dict(run: RunView) -> dict[str, Any]:
    return {**run.state.to_dict(), "part": run.state.part, "holding": run.holding, "stopped_at": run.stopped_at}


def _pull_run_states(remote: RemoteFolder, root: Path) -> None:
    """The folder's and the parts' ``run.json`` (the mirror brings the indexes only)."""
    remote.get(RUN_STATE, root / RUN_STATE)
    for name in remote.children(PARTS):
        remote.get(f"{PARTS}/{name}/{RUN_STATE}", root / PARTS / name / RUN_STATE)
