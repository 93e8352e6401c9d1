"""The HTTP-polling ComfyUI executor: waits by reading ``/history``, paced by how long the server takes per prompt."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import ProgressCallback
from .comfyui_base import POLL_FRACTION, POLL_MIN, ComfyUIExecutor, ComfyUIOptions, JsonDict
from .lifecycle import Deadline

if TYPE_CHECKING:  # typing.Unpack is 3.11+; annotations are never evaluated at run time
    from typing_extensions import Unpack

    from ..workflow import Workflow

#: past the expected end, the next look comes after this fraction of a prompt's time or of the time waited
LATE_FRACTION = 0.25
#: the shortest pause between two looks at one prompt once its expected end has passed
POLL_FLOOR = 0.001
#: weight of the newest prompt in the running estimate of the server's time per prompt
PACE_WEIGHT = 0.2


class Pace:
    """The server's time per prompt, learned from its own history timestamps, and this executor's prompts in line.

    A prompt submitted behind ``k`` of ours should end about ``k + 1`` prompt-times later, so the
    first look at ``/history`` goes there instead of at a fixed 10 ms: on a server that takes a few
    milliseconds per prompt a fixed first look idled it between prompts (the HTTP CLI reached 0.42
    of the server-bound rate), and on a slow one it cost looks that could not succeed.
    """

    def __init__(self) -> None:
        self.per_prompt: float | None = None  # seconds, from execution_start to execution_success on the server
        self._line: dict[str, None] = {}  # our prompts not yet seen done, in the order submitted
        self._lock = threading.Lock()

    def join(self, prompt_id: str) -> None:
        with self._lock:
            self._line[prompt_id] = None

    def leave(self, prompt_id: str) -> None:
        with self._lock:
            self._line.pop(prompt_id, None)

    def expected(self, prompt_id: str) -> float | None:
        """Seconds from submit to the prompt's expected end (None until a prompt's time is known)."""
        with self._lock:
            if self.per_prompt is None:
                return None
            ahead = 0
            for pid in self._line:
                if pid == prompt_id:
                    break
                ahead += 1
            return (ahead + 1) * self.per_prompt

    def learn(self, entry: Mapping[str, Any]) -> None:
        """Fold one finished prompt's server time (its history's start and success timestamps) into the estimate."""
        took = _server_seconds(entry)
        if took is None:
            return
        with self._lock:
            old = self.per_prompt
            self.per_prompt = took if old is None else old + PACE_WEIGHT * (took - old)


def _server_seconds(entry: Mapping[str, Any]) -> float | None:
    status = entry.get("status")
    messages = status.get("messages") if isinstance(status, Mapping) else None
    stamps: dict[str, float] = {}
    for m in messages if isinstance(messages, list) else []:
        if isinstance(m, list) and len(m) == 2 and isinstance(m[1], Mapping):
            ts = m[1].get("timestamp")
            if m[0] in ("execution_start", "execution_success") and isinstance(ts, (int, float)):
                stamps[m[0]] = ts / 1000.0
    if len(stamps) < 2 or not 0 <= stamps["execution_success"] - stamps["execution_start"] < 86400:
        return None
    return stamps["execution_success"] - stamps["execution_start"]


class HttpExecutor(ComfyUIExecutor):
    """Waits by polling ``/history``: first when the prompt should have ended, then ever less often.

    Until one prompt's time is known the look comes after a quarter of the time already waited
    (10 ms to ``poll_max``). Then the first look is at the expected end (``Pace``); past it, the
    next comes after a quarter of a prompt's time or of the time waited, whichever is longer (1 ms
    to ``poll_max``): looks grow apart by a quarter each, so a prompt stuck behind other clients'
    work, or far slower than the estimate, costs a few requests more, not a request per millisecond.
    """

    def __init__(self, url: str, **options: Unpack[ComfyUIOptions]) -> None:
        super().__init__(url, **options)
        self.pace = Pace()

    def _listen(self, prompt_id: str, workflow: Workflow, on_progress: ProgressCallback | None = None) -> None:
        self.pace.join(prompt_id)

    def _unlisten(self, prompt_id: str) -> None:
        self.pace.leave(prompt_id)

    def _wait(self, prompt_id: str, deadline: Deadline, on_progress: ProgressCallback | None) -> JsonDict:
        state: JsonDict = {}
        expected = self.pace.expected(prompt_id)
        if expected is not None:
            deadline.sleep(min(expected, self.poll_max))
        while True:
            deadline.check()
            entry = self._poll_history(prompt_id, deadline, state)
            if entry is not None:
                self.pace.learn(entry)
                return entry
            deadline.sleep(self._pause(deadline.elapsed(), expected))

    def _pause(self, elapsed: float, expected: float | None) -> float:
        if expected is None:
            return min(self.poll_max, max(POLL_MIN, elapsed * POLL_FRACTION))
        return min(self.poll_max, max(POLL_FLOOR, LATE_FRACTION * max(self.pace.per_prompt or 0.0, elapsed)))
