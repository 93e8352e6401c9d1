"""The HTTP executor's pace: each workflow's time per prompt from the server's history, and where a prompt stands in line."""

from __future__ import annotations

from typing import Any

import pytest

from comfykit_batch.executors.comfyui_http import PACE_WEIGHT, Pace


def entry(start_ms: float, end_ms: float) -> dict[str, Any]:
    return {"status": {"status_str": "success", "messages": [
        ["execution_start", {"prompt_id": "p", "timestamp": start_ms}],
        ["execution_cached", {"nodes": [], "prompt_id": "p", "timestamp": start_ms}],
        ["execution_success", {"prompt_id": "p", "timestamp": end_ms}]]}}


def test_expected_end_counts_our_prompts_ahead_in_line_each_at_its_workflows_time() -> None:
    pace = Pace()
    for pid, workflow in (("a", "image"), ("b", "video"), ("c", "image")):
        pace.join(pid, workflow)
    assert pace.expected("a") is None  # nothing learned yet
    pace.learn("a", entry(1_000, 1_004))
    pace.leave("a")
    assert pace.per_prompt == {"image": pytest.approx(0.004)}
    assert pace.expected("b") is None and pace.expected("c") == pytest.approx(0.004)  # the video's time: unknown
    pace.learn("b", entry(0, 2_000))
    pace.leave("b")
    pace.join("d", "image")
    assert pace.expected("d") == pytest.approx(0.008)  # c's time, then its own
    pace.join("e", "video")
    assert pace.expected("e") == pytest.approx(2.008)


def test_the_estimate_follows_the_server_by_a_running_average_and_only_for_our_prompts() -> None:
    pace = Pace()
    pace.join("a", "w")
    pace.join("b", "w")
    pace.learn("a", entry(0, 10))
    pace.learn("b", entry(0, 20))
    pace.learn("not ours", entry(0, 5000))
    assert pace.per_prompt == {"w": pytest.approx(0.010 + PACE_WEIGHT * 0.010)}


@pytest.mark.parametrize("bad", [
    {}, {"status": None}, {"status": {"messages": "x"}}, {"status": {"messages": [["execution_start", {}]]}},
    entry(10, 5), entry(0, 1e12), {"status": {"messages": [["execution_start", {"timestamp": "1"}],
                                                           ["execution_success", {"timestamp": 2}]]}},
])
def test_history_without_usable_timestamps_teaches_nothing(bad: dict[str, Any]) -> None:
    pace = Pace()
    pace.join("p", "w")
    pace.learn("p", bad)
    assert pace.per_prompt == {}
