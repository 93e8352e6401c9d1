"""Issue 19 on the real ComfyUI: a marker on an input the server does not list is refused before submitting."""

from __future__ import annotations

import json

import pytest
import requests

from comfykit_batch import ParameterError, Workflow
from comfykit_batch.executors.comfyui_http import HttpExecutor
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor

pytestmark = pytest.mark.real


@pytest.mark.parametrize("cls", [HttpExecutor, WebSocketExecutor], ids=["http", "websocket"])
def test_a_case_typo_beside_a_stale_key_is_refused_by_the_real_servers_inputs(cls, real_comfy, workflows):
    data = json.loads((workflows / "invert.json").read_text())
    data["1"]["inputs"]["Width"] = 64  # a stale key: the workflow alone cannot tell '$w.Width' is wrong
    data["1"]["_meta"]["title"] = "Size, $w.Width"
    before = len(requests.get(f"{real_comfy.url}/history", timeout=10).json())
    with cls(real_comfy.url) as ex, pytest.raises(ParameterError, match=r"'\$w\.Width'.*did you mean 'width'\?"):
        ex.execute(Workflow(data), {"w": 8}, timeout=60)
    assert len(requests.get(f"{real_comfy.url}/history", timeout=10).json()) == before, "nothing reached the server"
