"""``comfykit-batch status OUTPUT [--watch] [--json]``: how a batch is doing, from its output folder alone.

Reads the folder (local, ``s3://...``, or sharded into parts) while a run is going or after it ended,
without its lock (``batch.store.status``); the ETA follows the run room's one rule (``batch.run.eta``),
so it agrees with the live progress line. ``--watch`` refreshes until the run ends or Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from ..batch.run.eta import eta, format_duration
from ..batch.store.status import FolderStatus, RunView, folder_status
from .args import Parser

TTY_EVERY, LOG_EVERY = 2.0, 10.0  # seconds between refreshes: a terminal's screen, a log's lines
CLEAR = "\x1b[H\x1b[2J"


def _parser() -> Parser:
    p = Parser(prog="comfykit-batch status",
               description="How a batch is doing: completed, failed (by reason), pending, rate and ETA, backends, "
                           "the latest failures, and whether a run holds the folder. Reads the folder without "
                           "disturbing a run; works after a kill and before a merge.")
    p.add_argument("output", help="a batch's output folder (local, s3://..., or one holding shards' parts/)")
    p.add_argument("--watch", action="store_true",
                   help=f"refresh until the run ends (every {TTY_EVERY:g} s on a terminal; else a line every "
                        f"{LOG_EVERY:g} s); Ctrl-C stops")
    p.add_argument("--json", action="store_true", help="one JSON document (schemas/status.schema.json); with "
                                                       "--watch, one per line")
    return p


def main(argv: Sequence[str], *, stream: TextIO | None = None, wait: Callable[[float], None] = time.sleep) -> int:
    """Print the status once, or (``--watch``) until the run ends; ``wait`` is injectable so tests never sleep."""
    args = _parser().parse_args(list(argv)[1:])
    out = stream or sys.stdout

    def read() -> FolderStatus:
        return folder_status(args.output)

    if not args.watch:
        _write(out, _document(read()) if args.json else "\n".join(screen(read())))
        return 0
    tty = bool(getattr(out, "isatty", lambda: False)())
    try:
        final = watch(read, lambda st: _refresh(out, st, tty=tty, as_json=args.json), wait,
                      TTY_EVERY if tty else LOG_EVERY)
    except KeyboardInterrupt:
        return 0
    _write(out, (CLEAR if tty and not args.json else "") + (_document(final) if args.json else "\n".join(screen(final))))
    return 0


def watch(read: Callable[[], FolderStatus], show: Callable[[FolderStatus], None], wait: Callable[[float], None],
          interval: float) -> FolderStatus:
    """Show the status every ``interval`` seconds while it may still change; return it once no run holds the folder.

    Without a run state (a folder from an older version, or a run just starting) it goes on until Ctrl-C.
    """
    while True:
        status = read()
        if status.held is False:
            return status
        show(status)
        wait(interval)


def eta_of(st: FolderStatus) -> float | None:
    """Seconds left, by the run room's rule; only while a run holds the folder (else nothing is coming)."""
    left = st.left
    return eta(left, st.rate.per_second) if st.held and left is not None else None


def screen(st: FolderStatus) -> list[str]:
    """The full text status, one line each (what a terminal shows, refreshed under ``--watch``)."""
    lines = [f"{st.location}  ({st.name})", *_holders(st), _counts(st), _rate(st)]
    if st.failures:
        lines += ["failures by reason:", *(f"  {n:>7,}  {reason}" for reason, n in st.failures)]
    if st.backends:
        width = max(len("backend"), *(len(b.name) for b in st.backends))
        lines.append(f"  {'backend':<{width}}  {'jobs':>7}  {'failed':>6}  {'busy':>4}  last models")
        lines += [f"  {b.name:<{width}}  {b.jobs:>7,}  {b.failed:>6,}  {_share(b.busy):>4}  {', '.join(b.models or []) or '-'}"
                  for b in st.backends]
    if st.last_failures:
        lines.append(f"last {len(st.last_failures)} failure(s):")
        lines += [f"  {_when(f.finished)}  {f.id}  {f.backend or '-'}  {f.reason}" for f in st.last_failures]
    return lines


def line(st: FolderStatus) -> str:
    """One log line (``--watch`` when not on a terminal)."""
    held = "held since " + _when(st.since) if st.held else ("run state unknown" if st.held is None else "not held")
    left = "" if st.left is None else f" {'pending' if st.held else 'not run'} {st.left:,} / {st.total:,} |"
    return (f"{_when(st.now)} {st.name}: completed {st.completed:,} failed {st.failed:,} |{left} "
            f"{st.rate.per_second:.2f} jobs/s | ETA {format_duration(eta_of(st))} | {held}")


def _holders(st: FolderStatus) -> list[str]:
    if not st.runs:
        return ["run state unknown (no run.json here: no run of this version has started on this folder)"]
    return [(f"[{r.state.part}] " if r.state.part else "") + _holder(r, st.now) for r in st.runs]


def _holder(r: RunView, now: float) -> str:
    s = r.state
    if r.holding == "running":
        return f"held by pid {s.pid} on this host since {_when(s.started)} ({format_duration(now - s.started)} ago)"
    if r.holding == "elsewhere":
        return f"held by {s.host} (pid {s.pid}) since {_when(s.started)} (not checkable from here)"
    if r.holding == "stopped":
        return f"no run holds the folder (the last one, pid {s.pid}, stopped without finishing at {_when(r.stopped_at)})"
    return f"no run holds the folder (the last one ended at {_when(s.ended)}, exit {s.exit})"


def _counts(st: FolderStatus) -> str:
    done = f"{st.completed:,} completed, {st.failed:,} failed"
    if st.total is None:
        return f"jobs:     {done} (how many are expected is unknown without a run state)"
    return f"jobs:     {st.total:,} expected: {done}, {st.left:,} {'pending' if st.held else 'not run'}"


def _rate(st: FolderStatus) -> str:
    r = st.rate
    measured = f"{r.per_second:.2f} jobs/s ({r.jobs:,} finished in the last {format_duration(r.window)}"
    if not st.held:
        return f"rate:     {measured} before {_when(r.until)})" if r.until else "rate:     no job finished yet"
    return f"rate:     {measured}); ETA {format_duration(eta_of(st))}"


def _refresh(out: TextIO, st: FolderStatus, *, tty: bool, as_json: bool) -> None:
    if as_json:
        _write(out, _document(st, indent=None))
    elif tty:
        _write(out, CLEAR + "\n".join(screen(st)))
    else:
        _write(out, line(st))


def _document(st: FolderStatus, indent: int | None = 2) -> str:
    return json.dumps(st.to_dict(eta_of(st)), indent=indent, ensure_ascii=False)


def _write(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{round(value * 100)}%"
