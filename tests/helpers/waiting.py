"""Waiting on a system's state (a fake server's queue, a journal's lines): poll, never sleep blindly."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], limit: float = 20.0, every: float = 0.02) -> None:
    """Poll ``condition()`` until it holds; ``limit`` seconds only guard against a hang (no speed is asserted)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(every)
