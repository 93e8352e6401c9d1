"""The HTTP executor's pace: each workflow's time per prompt from the server's history, and where a prompt stands in line."""

from __future__ import annotations

from typing import Any

import pytest

from comfykit_batch.executors.comfyui_http import PACE_DOWN, PACE_UP, Pace

NO_CAP = 1e9


def entry(start_ms: float, end_ms: float) -> dict[str, Any]:
    return {"status": {"status_str": "success", "messages": [
        ["execution_start", {"prompt_id": "p", "timestamp": start_ms}],
        ["execution_cached", {"nodes": [], "prompt_id": "p", "timestamp": start_ms}],
        ["execution_success", {"prompt_id": "p", "timestamp": end_ms}]]}}


def taught(pace: Pace, workflow: str, *millis: float) -> None:
    for i, ms in enumerate(millis):
        pid = f"{workflow}-{i}-{len(pace.per_prompt)}"
        pace.join(pid, workflow)
        pace.learn(pid, entry(0, ms))
        pace.leave(pid)


def test_a_workflows_first_prompt_teaches_nothing() -> None:
    """It may have loaded the models: a minute once, then seconds."""
    pace = Pace()
    taught(pace, "w", 30_000)
    assert pace.per_prompt == {}
    taught(pace, "w", 3_000)
    assert pace.per_prompt == {"w": pytest.approx(3.0)}


def test_expected_end_counts_our_prompts_ahead_in_line_each_at_its_workflows_time() -> None:
    pace = Pace()
    taught(pace, "image", 9, 4)
    for pid, workflow in (("b", "video"), ("c", "image")):
        pace.join(pid, workflow)
    assert pace.expected("b", NO_CAP) is None and pace.expected("c", NO_CAP) == pytest.approx(0.004)  # video: unknown
    taught(pace, "video", 1, 2_000)
    pace.leave("b")
    pace.join("d", "image")
    assert pace.expected("d", NO_CAP) == pytest.approx(0.008)  # c's time, then its own
    pace.join("e", "video")
    assert pace.expected("e", NO_CAP) == pytest.approx(2.008)
    assert pace.expected("e", ahead_at_most=0.001) == pytest.approx(2.001)  # several servers behind one URL


def test_a_shorter_time_counts_more_than_a_longer_one_and_only_our_prompts_count() -> None:
    pace = Pace()
    taught(pace, "w", 1, 10, 20)
    assert pace.per_prompt == {"w": pytest.approx(0.010 + PACE_UP * 0.010)}
    taught(pace, "w", 2)
    assert pace.per_prompt == {"w": pytest.approx(0.012 - PACE_DOWN * 0.010)}
    pace.learn("not ours", entry(0, 5000))
    assert pace.per_prompt == {"w": pytest.approx(0.012 - PACE_DOWN * 0.010)}


@pytest.mark.parametrize("bad", [
    {}, {"status": None}, {"status": {"messages": "x"}}, {"status": {"messages": [["execution_start", {}]]}},
    entry(10, 5), entry(0, 1e12), {"status": {"messages": [["execution_start", {"timestamp": "1"}],
                                                           ["execution_success", {"timestamp": 2}]]}},
])
def test_history_without_usable_timestamps_teaches_nothing(bad: dict[str, Any]) -> None:
    pace = Pace()
    for pid in ("p", "q"):
        pace.join(pid, "w")
        pace.learn(pid, bad)
    assert pace.per_prompt == {}
