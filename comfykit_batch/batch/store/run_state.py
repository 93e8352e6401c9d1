"""``run.json``: which run is using an output folder, since when, how many jobs it expects, and how it ended.

The records say what finished; only the run itself knows that it is still going, how many jobs it
set out to do and whether it ended or was killed. Its session writes this small file when it starts
and again when it ends (a shard in its part's folder), so ``status`` can say, from anywhere and
without the run's lock, whether a run holds the folder. Written atomically (a reader sees the old
file or the new one); a failure to write it is a warning, never a reason to stop a batch.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ...files import save_stream
from .folder import OutputFolder
from .layout import PARTS

logger = logging.getLogger("comfykit_batch.batch.store.run_state")

RUN_STATE = "run.json"

#: running: alive on this host; elsewhere: not ended, on another host (not checkable from here);
#: stopped: not ended and its process is gone (killed); ended: it wrote its end
Holding = Literal["running", "elsewhere", "stopped", "ended"]


@dataclass(frozen=True)
class RunState:
    """One run's ``run.json`` (``part``: the shard's part folder it was read from, not stored in the file)."""

    pid: int
    host: str
    started: float
    total: int
    name: str
    ended: float | None = None
    exit: int | None = None
    part: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file's fields, in the documented order (``part`` is where it was found, not part of the file)."""
        data = asdict(self)
        data.pop("part")
        return data


def write_run_state(home: Path, *, name: str, total: int, started: float, folder: OutputFolder | None = None) -> None:
    """Say that this process runs ``name``'s ``total`` jobs in ``home`` (the folder, or a shard's part) since ``started``.

    ``folder``: the run's store, so a remote folder gets its copy too (``status`` elsewhere reads that one).
    """
    state = RunState(pid=os.getpid(), host=socket.gethostname(), started=round(started, 3), total=total, name=name)
    _save(home, state, folder)


def end_run_state(home: Path, exit_code: int, *, folder: OutputFolder | None = None) -> None:
    """Say that this process's run in ``home`` has ended, with its exit code.

    Only its own ``run.json``: if its start could not be written, an earlier run's file is left as it was.
    """
    state = read_run_state(home)
    if state is None or state.pid != os.getpid() or state.host != socket.gethostname():
        return
    _save(home, replace(state, ended=round(time.time(), 3), exit=exit_code), folder)


def read_run_state(home: Path, part: str | None = None) -> RunState | None:
    """``home/run.json``, or None when it is missing or unreadable (a folder written before run states)."""
    try:
        data = json.loads((home / RUN_STATE).read_text(encoding="utf-8"))
        return RunState(pid=int(data["pid"]), host=str(data["host"]), started=float(data["started"]),
                        total=int(data["total"]), name=str(data.get("name") or ""), ended=_number(data.get("ended")),
                        exit=None if data.get("exit") is None else int(data["exit"]), part=part)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def run_states(root: Path) -> list[RunState]:
    """The run states of the folder and of each shard's part (any part folder holding a ``run.json``)."""
    found = [s for s in [read_run_state(root)] if s is not None]
    base = root / PARTS
    parts = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    return found + [s for p in parts if (s := read_run_state(p, part=p.name)) is not None]


def holding(state: RunState, *, host: str | None = None, alive: Callable[[int], bool] | None = None) -> Holding:
    """Whether the run of ``state`` still holds its folder, as far as this host can tell."""
    if state.ended is not None:
        return "ended"
    if state.host != (host or socket.gethostname()):
        return "elsewhere"
    return "running" if (alive or pid_alive)(state.pid) else "stopped"


def pid_alive(pid: int) -> bool:
    """A process with this id exists on this host (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _save(home: Path, state: RunState, folder: OutputFolder | None) -> None:
    path = home / RUN_STATE
    try:
        save_stream([json.dumps(state.to_dict()).encode("utf-8")], path)
        if folder is not None and folder.remote is not None:
            folder.remote.put(path, folder.relative(path))
    except Exception as exc:  # noqa: BLE001 - any storage error (fsspec's included): the batch goes on
        logger.warning("%s: could not write the run state (%s); status will not know this run", path, exc)
