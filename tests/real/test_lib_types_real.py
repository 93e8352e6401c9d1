"""``ComfyKit`` checks values against the real server's input types before submitting anything."""

from __future__ import annotations

import pytest
import requests

from comfykit_batch import ComfyKit, ParameterError

pytestmark = pytest.mark.real


def _history_count(url: str) -> int:
    r = requests.get(f"{url}/history", timeout=10)
    r.raise_for_status()
    return len(r.json())


@pytest.fixture(params=["http", "websocket"])
def kit(request, real_comfy):
    with ComfyKit(real_comfy.url, request.param, timeout=120) as k:
        yield k


@pytest.mark.parametrize(
    "params, match",
    [
        ({"width": 3.5}, r"parameter 'width' expects int \(a whole number\), got float 3.5"),
        ({"width": 2**70}, "does not fit in a signed 64-bit integer"),
        ({"width": 20000}, r"parameter 'width' must be between 0 and 16384 \(the server's limits\)"),
        ({"method": "bilinr"}, r"'bilinr' is not one of the server's choices \(did you mean 'bilinear'\?\)"),
        ({"crop": True}, "quote it"),
    ],
)
def test_bad_values_are_refused_before_anything_is_submitted(kit, real_comfy, workflows, params, match):
    before = _history_count(real_comfy.url)
    with pytest.raises(ParameterError, match=match):
        kit.execute_sync(str(workflows / "scale_choice.json"), params)
    assert _history_count(real_comfy.url) == before, "a refused value must never reach the server"


def test_a_valid_value_runs_and_completes(kit, real_comfy, workflows):
    before = _history_count(real_comfy.url)
    r = kit.execute_sync(str(workflows / "scale_choice.json"), {"method": "bilinear", "width": 20.0, "height": "10"})
    assert r.status == "completed", r.msg
    assert r.params["width"] == 20 and isinstance(r.params["width"], int) and r.params["height"] == 10
    assert list(r.images_by_var) == ["scaled"] and len(r.images) == 1
    assert _history_count(real_comfy.url) == before + 1


def test_an_int_literal_workflow_refuses_3_5_from_the_servers_type(kit, real_comfy, workflows):
    before = _history_count(real_comfy.url)
    with pytest.raises(ParameterError, match="expects int"):
        kit.execute_sync(str(workflows / "invert.json"), {"width": 3.5})
    assert _history_count(real_comfy.url) == before
