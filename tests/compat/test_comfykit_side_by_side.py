"""The same calls through the published comfykit 0.1.12 and through this package, compared field by field.

Both run against the real ComfyUI (and the fake RunningHub); the published package runs in its own
venv (the benchmarks' one). Where the two differ on purpose, the README's "Differences from comfykit"
says why, and the difference is asserted here as documented: the status word of a failed run
(``"error"`` there, ``"failed"`` here unless ``compat="comfykit"``) and a partly invalid prompt
(``"completed"`` there, ``"failed"`` with kind ``validation`` here).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.common import ensure_peer_venv
from comfykit_batch import ComfyKit, ExecuteResult
from tests.conftest import WORKFLOWS
from tests.fakes.fake_runninghub import GOOD_KEY, FakeRunningHub

pytestmark = pytest.mark.real

PEER = Path(__file__).with_name("peer_calls.py")
#: an image output and a text output, both declared, with required markers
BOTH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 255},
          "_meta": {"title": "$width!, $height"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "compat/inv"},
          "_meta": {"title": "$output.inverted"}},
    "4": {"class_type": "StringConcatenate", "inputs": {"string_a": "hello", "string_b": "world", "delimiter": " "},
          "_meta": {"title": "$a.string_a!"}},
    "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}, "_meta": {"title": "$output.joined"}},
}
PARTIAL = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "compat/good"}},
    "3": {"class_type": "EmptyImage", "inputs": {"width": -5, "height": 8, "batch_size": 1, "color": 0}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "compat/bad"}},
}


def _calls(tmp: Path, workflows: Path) -> dict[str, dict[str, Any]]:
    both = tmp / "both.json"
    both.write_text(json.dumps(BOTH))
    return {
        "success": {"workflow": str(both), "params": {"width": 32, "a": "hi"}},
        "node_error": {"workflow": str(workflows / "raise.json"), "params": {"message": "boom from the node"}},
        "missing_file": {"workflow": str(tmp / "non_existent_workflow.json"), "params": {"prompt": "test"}},
        "missing_required": {"workflow": str(both), "params": {"a": "hi"}},
        "unknown_params": {"workflow": BOTH, "params": {"width": 16, "a": "x", "seed": 42, "steps": 20}},
        "partial_validation": {"workflow": PARTIAL, "params": {}},
    }


def _peer(kit: dict[str, Any], calls: list[dict[str, Any]], dumps: list[dict[str, Any]]) -> dict[str, Any]:
    spec = json.dumps({"kit": kit, "calls": calls, "dumps": dumps})
    proc = subprocess.run([ensure_peer_venv(), str(PEER)], input=spec, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ours(kit: dict[str, Any], calls: list[dict[str, Any]], **extra: Any) -> tuple[list[ExecuteResult], Any]:
    async def main() -> tuple[list[ExecuteResult], Any]:
        k = ComfyKit(**kit, **extra)
        out = []
        for c in calls:
            call = k.execute_json if isinstance(c["workflow"], dict) else k.execute
            out.append(await call(c["workflow"], c["params"]))
        return out, await k.close()

    return asyncio.run(main())


@pytest.fixture(scope="module", params=["http", "websocket"])
def side_by_side(request, real_comfy, tmp_path_factory):
    calls = _calls(tmp_path_factory.mktemp("compat"), WORKFLOWS)
    kit = {"comfyui_url": real_comfy.url, "executor_type": request.param}
    ours, closed = _ours(kit, list(calls.values()))
    compat, _ = _ours(kit, list(calls.values()), compat="comfykit")
    theirs = _peer(kit, list(calls.values()), [r.model_dump() for r in ours])
    names = list(calls)
    return {"ours": dict(zip(names, ours, strict=True)), "compat": dict(zip(names, compat, strict=True)), "closed": closed,
            "theirs": dict(zip(names, theirs["results"], strict=True)), "their_closed": theirs["closed"],
            "their_dumps": dict(zip(names, theirs["dumps"], strict=True))}


def _same_shape(ours: ExecuteResult, theirs: dict[str, Any]) -> None:
    """The same fields in the same order, each of the same type (None where comfykit has None)."""
    dumped = ours.model_dump()
    assert list(dumped) == list(theirs["dump"])
    for name, value in dumped.items():
        assert "NoneType" in (type(value).__name__, theirs["types"][name]) or type(value).__name__ == theirs["types"][name], (
            name, value, theirs["dump"][name])


def test_success_with_image_and_text_outputs(side_by_side):
    ours, theirs = side_by_side["ours"]["success"], side_by_side["theirs"]["success"]
    assert ours.status == theirs["dump"]["status"] == "completed", (ours.msg, theirs["dump"]["msg"])
    _same_shape(ours, theirs)
    assert len(ours.images) == len(theirs["dump"]["images"]) == 1
    assert list(ours.images_by_var) == list(theirs["dump"]["images_by_var"]) == ["inverted"]
    assert ours.texts == theirs["dump"]["texts"] == ["hi world"]
    assert ours.texts_by_var == theirs["dump"]["texts_by_var"]
    assert isinstance(ours.duration, float) and ours.duration > 0 and theirs["dump"]["duration"] > 0


@pytest.mark.parametrize("case", ["node_error", "missing_file", "missing_required"])
def test_failures_are_results_with_a_message_in_both(side_by_side, case):
    ours, theirs, compat = (side_by_side[k][case] for k in ("ours", "theirs", "compat"))
    assert theirs["dump"]["status"] == "error" and theirs["dump"]["msg"]
    assert ours.status == "failed" and ours.msg and ours.failure is not None, "the seed's word"
    assert compat.status == "error" and compat.msg == ours.msg, "compat='comfykit': comfykit's word"
    _same_shape(ours, theirs)
    expected = {"node_error": "boom from the node", "missing_file": "non_existent_workflow.json",
                "missing_required": "width"}[case]
    assert expected in ours.msg and expected in theirs["dump"]["msg"], (ours.msg, theirs["dump"]["msg"])
    assert ours.failure.kind == {"node_error": "execution", "missing_file": "invalid",
                                 "missing_required": "invalid"}[case]


def test_unknown_parameters_are_ignored_by_both_and_named_here(side_by_side):
    ours, theirs = side_by_side["ours"]["unknown_params"], side_by_side["theirs"]["unknown_params"]
    assert ours.status == theirs["dump"]["status"] == "completed", (ours.msg, theirs["dump"]["msg"])
    assert ours.ignored_params == ["seed", "steps"]
    assert ours.texts == theirs["dump"]["texts"] == ["x world"]


def test_partial_validation_is_the_documented_difference(side_by_side):
    ours, theirs = side_by_side["ours"]["partial_validation"], side_by_side["theirs"]["partial_validation"]
    assert theirs["dump"]["status"] == "completed", "comfykit reports a partly rejected prompt as completed"
    assert ours.status == "failed" and ours.failure.kind == "validation"


def test_close_is_awaited_in_both(side_by_side):
    """``await kit.close()`` after local runs: None here; comfykit 0.1.12 raises, its local executors having no close."""
    assert side_by_side["closed"] is None
    assert side_by_side["their_closed"] == "raised AttributeError"


def test_model_dump_json_is_comfykits_byte_for_byte(side_by_side):
    for case, ours in side_by_side["ours"].items():
        plain, indented = side_by_side["their_dumps"][case]
        assert ours.model_dump_json() == plain, case
        assert ours.model_dump_json(indent=2) == indented, case
        assert ours.model_dump() == json.loads(plain), case


def test_runninghub_through_both(tmp_path):
    fake = FakeRunningHub().start()
    try:
        fake.workflows["1904136902449209346"] = {
            "3": {"class_type": "KSampler", "inputs": {"seed": 1}, "_meta": {"title": "$seed"}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "$prompt.text!"}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
        kit = {"runninghub_url": fake.url, "runninghub_api_key": GOOD_KEY, "runninghub_instance_type": "plus"}
        calls = [{"workflow": "1904136902449209346", "params": {"prompt": "a cat", "seed": 7, "steps": 20}}]
        ours, _ = _ours(kit, calls)
        theirs = _peer(kit, calls, [])["results"]
        assert ours[0].status == theirs[0]["dump"]["status"] == "completed", (ours[0].msg, theirs[0]["dump"]["msg"])
        _same_shape(ours[0], theirs[0])
        assert len(ours[0].images) == len(theirs[0]["dump"]["images"]) == 1
        assert ours[0].ignored_params == ["steps"]
        creates = [body for path, body in fake.calls if path.endswith("/create")]
        assert len(creates) == 2 and all(c.get("instanceType") == "plus" for c in creates), creates
    finally:
        fake.stop()
