"""Stop a batch whose jobs all fail the same way, instead of burning a night of GPU time on it.

A bad LoRA name, a node missing on the servers, an out-of-memory at one size: every job then fails
with the same kind at the same node, and a batch left overnight would submit the whole sweep. The
watch counts, per backend, the failures in a row with one signature (kind and node). When a
backend's count reaches ``limit`` (``defaults.stop_after_failures``; 0 never stops):

- if another live backend's last job succeeded, the fault is that backend's (a node missing there,
  one GPU out of memory): it is dropped with a warning and the rest continue;
- otherwise the batch stops submitting: its in-flight jobs finish, the index is written, and the
  run exits 1 naming the kind, the node and a sample message. A re-run after the fix resumes.

Only failures that are final count (a transient one retried elsewhere is not a verdict yet), and any
success on a backend clears its count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...result import Failure


@dataclass(frozen=True)
class Stall:
    """Why the batch stopped itself: the shared signature of the failures, and one of their messages."""

    kind: str
    node: str | None
    message: str
    count: int

    def line(self) -> str:
        where = f" at node {self.node}" if self.node else ""
        return (f"stopped: {self.count} jobs in a row failed the same way ({self.kind}{where}): {self.message}; "
                "fix the cause and run the same command again to resume (add --retry-failed to re-run the failed ones)")


@dataclass
class _Streak:
    signature: tuple[str, str | None] | None = None
    count: int = 0
    last_ok: bool = False


def signature(f: Failure) -> tuple[str, str | None]:
    """What makes two failures "the same way": their kind and the node (id and class) they failed at."""
    node = f"{f.node_id} ({f.node_type})" if f.node_id and f.node_type else f.node_id
    return f.kind, node


@dataclass
class FailureWatch:
    """Per-backend runs of identical failures; says when one is systematic (see the module's docstring).

    A backend whose run reaches the limit before any other backend has shown a result is *held* (given
    no job) until one does: a success elsewhere drops it, the same failure elsewhere stops the batch.
    """

    limit: int
    streaks: dict[str, _Streak] = field(default_factory=dict)
    held: dict[str, Failure] = field(default_factory=dict)

    def ok(self, backend: str) -> list[str]:
        """A success on ``backend``: the held backends to drop (they fail where this one works)."""
        self.streaks[backend] = _Streak(last_ok=True)
        dropped, self.held = list(self.held), {}
        return dropped

    def failed(self, backend: str, failure: Failure, live: set[str]) -> Stall | str | None:
        """None: go on; a backend name: drop it (the others work); a ``Stall``: stop the batch."""
        s = self.streaks.setdefault(backend, _Streak())
        sig = signature(failure)
        s.count = s.count + 1 if s.signature == sig else 1
        s.signature, s.last_ok = sig, False
        if not self.limit:
            return None
        if s.count >= self.limit and any(self._streak(b).last_ok for b in live - {backend}):
            s.count = 0
            return backend
        if s.count >= self.limit:
            self.held[backend] = failure  # systematic here: is it everywhere? its next job waits for the others' word
        if self.held and all(self._streak(b).signature == sig and not self._streak(b).last_ok for b in live):
            return Stall(sig[0], sig[1], failure.message, max(self._streak(b).count for b in live))
        return None

    def _streak(self, backend: str) -> _Streak:
        return self.streaks.get(backend) or _Streak()
