"""The HTTP executor's pace: the server's time per prompt from its history, and where a prompt stands in line."""

from __future__ import annotations

from typing import Any

import pytest

from comfykit_batch.executors.comfyui_http import PACE_WEIGHT, Pace


def entry(start_ms: float, end_ms: float) -> dict[str, Any]:
    return {"status": {"status_str": "success", "messages": [
        ["execution_start", {"prompt_id": "p", "timestamp": start_ms}],
        ["execution_cached", {"nodes": [], "prompt_id": "p", "timestamp": start_ms}],
        ["execution_success", {"prompt_id": "p", "timestamp": end_ms}]]}}


def test_expected_end_counts_our_prompts_ahead_in_line() -> None:
    pace = Pace()
    for pid in ("a", "b", "c"):
        pace.join(pid)
    assert pace.expected("b") is None  # nothing learned yet
    pace.learn(entry(1_000, 1_004))
    assert pace.expected("a") == pytest.approx(0.004) and pace.expected("c") == pytest.approx(0.012)
    pace.leave("a")
    assert pace.expected("c") == pytest.approx(0.008)


def test_the_estimate_follows_the_server_by_a_running_average() -> None:
    pace = Pace()
    pace.learn(entry(0, 10))
    pace.learn(entry(0, 20))
    assert pace.per_prompt == pytest.approx(0.010 + PACE_WEIGHT * 0.010)


@pytest.mark.parametrize("bad", [
    {}, {"status": None}, {"status": {"messages": "x"}}, {"status": {"messages": [["execution_start", {}]]}},
    entry(10, 5), entry(0, 1e12), {"status": {"messages": [["execution_start", {"timestamp": "1"}],
                                                           ["execution_success", {"timestamp": 2}]]}},
])
def test_history_without_usable_timestamps_teaches_nothing(bad: dict[str, Any]) -> None:
    pace = Pace()
    pace.learn(bad)
    assert pace.per_prompt is None
