"""The HTTP-polling ComfyUI executor: waits by reading ``/history`` at a growing interval."""

from __future__ import annotations

from .base import ProgressCallback
from .comfyui_base import POLL_FRACTION, POLL_MIN, ComfyUIExecutor, JsonDict
from .lifecycle import Deadline


class HttpExecutor(ComfyUIExecutor):
    """Waits by polling ``/history``; the interval grows with the time already waited.

    Polling at a quarter of the elapsed time (10 ms to ``poll_max``) bounds the added
    latency to about 25% of the job while a 100 ms job costs ~9 requests, not ~17 as
    at 10% (each poll is ~1 ms of client CPU). In a batch the next prompt already
    waits in the server's queue, so this latency never idles the server.
    """

    def _wait(self, prompt_id: str, deadline: Deadline, on_progress: ProgressCallback | None) -> JsonDict:
        state: JsonDict = {}
        while True:
            deadline.check()
            entry = self._poll_history(prompt_id, deadline, state)
            if entry is not None:
                return entry
            deadline.sleep(min(self.poll_max, max(POLL_MIN, deadline.elapsed() * POLL_FRACTION)))
