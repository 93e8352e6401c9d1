"""The ComfyUI client against a loopback fake that records every request: routes, errors, secrets."""

from __future__ import annotations

from collections import deque

import pytest

from comfykit_batch.errors import AuthError, BackendError
from comfykit_batch.executors.comfyui_client import ComfyUIClient, PromptRejected

NODE_ERRORS = {"1": {"class_type": "EmptyImage", "dependent_outputs": ["3"], "errors": [
    {"type": "value_smaller_than_min", "message": "Value -5 smaller than min of 1", "details": "width",
     "extra_info": {"input_name": "width"}}]}}


def test_400_node_errors_become_one_readable_line(fake_comfy):
    fake_comfy.script["POST /prompt"] = deque([(400, {"error": {"type": "prompt_outputs_failed_validation",
                                                                "message": "Prompt outputs failed validation"},
                                                      "node_errors": NODE_ERRORS})])
    with pytest.raises(PromptRejected) as exc:
        ComfyUIClient(fake_comfy.url).submit({}, prompt_id="p", client_id="c")
    assert str(exc.value) == ("Prompt outputs failed validation: node 1 (EmptyImage) input 'width': "
                              "Value -5 smaller than min of 1 (width)")
    assert exc.value.node_errors["1"]["class_type"] == "EmptyImage" and not exc.value.queued


def test_200_with_node_errors_is_a_rejection_of_a_queued_prompt(fake_comfy):
    fake_comfy.script["POST /prompt"] = deque([(200, {"prompt_id": "p", "number": 0, "node_errors": NODE_ERRORS})])
    with pytest.raises(PromptRejected, match="node 1 \\(EmptyImage\\) input 'width'") as exc:
        ComfyUIClient(fake_comfy.url).submit({}, prompt_id="p", client_id="c")
    assert exc.value.queued and not exc.value.transient and isinstance(exc.value, BackendError)


def test_submit_sends_chosen_prompt_id_and_api_key(fake_comfy):
    ComfyUIClient(fake_comfy.url, api_key="sk-1").submit({"1": {"class_type": "EmptyImage", "inputs": {"width": 1}}},
                                                         prompt_id="p1", client_id="c")
    (body,) = fake_comfy.submitted
    assert body["prompt_id"] == "p1" and body["client_id"] == "c" and body["extra_data"] == {"api_key_comfy_org": "sk-1"}
    (_, _, headers), = [h for h in fake_comfy.headers if h[1] == "/prompt"]
    assert headers["Authorization"] == "Bearer sk-1"


def test_login_redirect_is_an_auth_error_and_not_followed(fake_comfy):
    fake_comfy.script["GET /history"] = deque([(302, b"", {"Location": "/login"})])
    with pytest.raises(AuthError, match="login page"):
        ComfyUIClient(fake_comfy.url).history("x")
    assert [p for _, p in fake_comfy.requests] == ["/history/x"]


def test_history_empty_means_pending(fake_comfy):
    assert ComfyUIClient(fake_comfy.url).history("x") is None


@pytest.mark.parametrize("status, transient", [(500, True), (503, True), (429, True), (404, False)])
def test_http_errors_map_to_backend_errors_with_the_body_scrubbed(fake_comfy, status, transient):
    fake_comfy.script["GET /queue"] = deque([(status, b"echo: Authorization: Bearer sk-1234567 cookie sess=val-9876")])
    with pytest.raises(BackendError) as exc:
        ComfyUIClient(fake_comfy.url, api_key="sk-1234567", cookies="sess=val-9876").queue()
    assert exc.value.transient is transient and f"HTTP {status}" in str(exc.value)
    assert "sk-1234567" not in str(exc.value) and "val-9876" not in str(exc.value) and "***" in str(exc.value)


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_are_auth_errors(fake_comfy, status):
    fake_comfy.script["GET /system_stats"] = deque([(status, b"")])
    with pytest.raises(AuthError, match=f"HTTP {status}"):
        ComfyUIClient(fake_comfy.url).system_stats()


def test_cookies_and_key_reach_a_localhost_server_on_every_route(fake_comfy):
    c = ComfyUIClient(fake_comfy.url.replace("127.0.0.1", "localhost"), api_key="sk-1", cookies={"s": "v1", "t": "v2"})
    c.queue()
    c.history("x")
    c.upload("a.png", b"\x89PNG", overwrite=True)
    assert len(fake_comfy.headers) == 3
    assert all(h["Cookie"] == "s=v1; t=v2" and h["Authorization"] == "Bearer sk-1" for _, _, h in fake_comfy.headers)
    assert list(fake_comfy.uploads) == ["a.png"] and b'name="overwrite"\r\n\r\ntrue' in fake_comfy.uploads["a.png"]
