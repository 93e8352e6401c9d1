"""Progress on stderr: one live line on a terminal, plain log lines otherwise (the CLI's, so it may print)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..batch.run.eta import format_duration
from ..batch.run.runner import Progress


class ProgressDisplay:
    """Call with a ``Progress`` snapshot; call ``close()`` at the end."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 10.0, quiet: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.quiet = quiet
        self.clock = clock
        self._last: float | None = None  # when the last log line was written; None: never (monotonic has no zero)
        self._seen: Progress | None = None
        self._width = 0

    def line(self, p: Progress) -> str:
        pending = max(0, p.total - p.finished - p.skipped)
        backends = " ".join(f"{name}:{n}" for name, n in p.in_flight.items())
        skipped = f" skipped {p.skipped}" if p.skipped else ""
        return (f"done {p.done} failed {p.failed}{skipped} / {p.total} | pending {pending} | "
                f"{p.rate():.2f} jobs/s | ETA {format_duration(p.eta())} | in flight {backends}")

    def __call__(self, p: Progress) -> None:
        self._seen = p
        if self.quiet:
            return
        text = self.line(p)
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            self.stream.flush()
            return
        now = self.clock()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self, last: Progress | None = None) -> None:
        """End the live line (terminal) or write the final state (log)."""
        last = last or self._seen
        if self.quiet:
            return
        if self.tty:
            if self._width:
                self.stream.write("\n")
        elif last is not None:
            self.stream.write(self.line(last) + "\n")
        self.stream.flush()
