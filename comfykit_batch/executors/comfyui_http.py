"""The HTTP-polling ComfyUI executor: waits by reading ``/history``, paced by how long the server takes per prompt."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import ProgressCallback
from .comfyui_base import ComfyUIExecutor, ComfyUIOptions, JsonDict, status_messages
from .lifecycle import Deadline

if TYPE_CHECKING:  # typing.Unpack is 3.11+; annotations are never evaluated at run time
    from typing_extensions import Unpack

    from ..workflow import Workflow

#: how far a prompt's time moves the estimate of its workflow's time: a longer one, a shorter one
PACE_UP, PACE_DOWN = 0.2, 0.5


class Pace:
    """Each workflow's time per prompt on this server, learned from the server's own history timestamps,
    and this executor's prompts in line.

    A prompt submitted behind some of ours should end when they and it have run, so the first look
    at ``/history`` goes there instead of at once and then from 10 ms on: on a server that takes a
    few milliseconds per prompt that idled it between prompts (the HTTP CLI reached 0.42 of the
    server-bound rate), and on a slow one it cost a look a second. Times are kept per workflow: a
    video workflow's minute says nothing of an image workflow's second.

    A look too early costs a request; one too late idles the server. So a workflow's first prompt
    teaches nothing (it may have loaded the models), a shorter time moves the estimate half way at
    once and a longer one a fifth of the way (one slow prompt does not delay the next ones), and the
    time counted for prompts ahead is capped by the caller (a URL in front of several servers runs
    ours side by side, not one after another).
    """

    def __init__(self) -> None:
        self.per_prompt: dict[str, float] = {}  # workflow fingerprint -> seconds from execution_start to execution_success
        self._first_seen: set[str] = set()  # workflows whose first prompt ended (and taught nothing)
        self._line: dict[str, str] = {}  # our prompts not yet seen done, in the order submitted -> their workflow
        self._lock = threading.Lock()

    def join(self, prompt_id: str, workflow: str) -> None:
        with self._lock:
            self._line[prompt_id] = workflow

    def leave(self, prompt_id: str) -> None:
        with self._lock:
            self._line.pop(prompt_id, None)

    def expected(self, prompt_id: str, ahead_at_most: float) -> float | None:
        """Seconds from submit to the prompt's expected end: its own time and that of ours ahead of it, the
        latter at most ``ahead_at_most`` (None while its workflow's time is unknown; a prompt ahead whose
        time is unknown counts nothing)."""
        with self._lock:
            own = self.per_prompt.get(self._line.get(prompt_id, ""))
            if own is None:
                return None
            ahead = 0.0
            for pid, workflow in self._line.items():
                if pid == prompt_id:
                    break
                ahead += self.per_prompt.get(workflow, 0.0)
            return min(ahead, ahead_at_most) + own

    def learn(self, prompt_id: str, entry: Mapping[str, Any]) -> None:
        """Fold a prompt of ours that ended into its workflow's time (its history's start and success timestamps)."""
        took = _server_seconds(entry)
        with self._lock:
            workflow = self._line.get(prompt_id)
            if took is None or workflow is None:
                return
            if workflow not in self._first_seen:
                self._first_seen.add(workflow)
                return
            old = self.per_prompt.get(workflow)
            weight = PACE_DOWN if old is not None and took < old else PACE_UP
            self.per_prompt[workflow] = took if old is None else old + weight * (took - old)


def _server_seconds(entry: Mapping[str, Any]) -> float | None:
    """How long the server took from the prompt's start to its success, by its own timestamps (None: unknown)."""
    stamps: dict[str, float] = {}
    for kind, data in status_messages(entry.get("status")):
        ts = data.get("timestamp")
        if kind in ("execution_start", "execution_success") and isinstance(ts, (int, float)):
            stamps[kind] = ts / 1000.0
    if len(stamps) < 2 or not 0 <= stamps["execution_success"] - stamps["execution_start"] < 86400:
        return None
    return stamps["execution_success"] - stamps["execution_start"]


class HttpExecutor(ComfyUIExecutor):
    """Waits by polling ``/history``: first when the prompt should have ended, then ever less often.

    The first look is at the expected end (``Pace``); then, as before any time is known, each
    look comes after a quarter of the time already waited (up to ``poll_max``), from 1 ms once
    an end was expected, else from 10 ms (``Timings``: ``poll_fraction``, ``poll_floor``,
    ``poll_min``). Looks grow apart by a quarter each, so a prompt stuck behind other clients'
    work, or slower than its estimate, costs a few requests more.
    """

    def __init__(self, url: str, **options: Unpack[ComfyUIOptions]) -> None:
        super().__init__(url, **options)
        self.pace = Pace()

    def _listen(self, prompt_id: str, workflow: Workflow, on_progress: ProgressCallback | None = None) -> None:
        self.pace.join(prompt_id, workflow.fingerprint())

    def _unlisten(self, prompt_id: str) -> None:
        self.pace.leave(prompt_id)

    def _wait(self, prompt_id: str, deadline: Deadline, on_progress: ProgressCallback | None) -> JsonDict:
        state: JsonDict = {}
        expected = self.pace.expected(prompt_id, ahead_at_most=self.poll_max)
        if expected is not None:
            deadline.sleep(expected)
        while True:
            deadline.check()
            entry = self._poll_history(prompt_id, deadline, state)
            if entry is not None:
                self.pace.learn(prompt_id, entry)
                return entry
            t = self.timings
            floor = t.poll_min if expected is None else t.poll_floor
            deadline.sleep(min(self.poll_max, max(floor, deadline.elapsed() * t.poll_fraction)))
