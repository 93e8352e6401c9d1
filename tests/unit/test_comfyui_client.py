import json

import pytest
import responses

from comfykit_batch.errors import AuthError, BackendError, ConfigError
from comfykit_batch.executors.comfyui_client import ComfyUIClient, PromptRejected, parse_cookies

BASE = "http://comfy.test:8188"


@responses.activate
def test_400_node_errors_become_one_readable_line():
    responses.post(f"{BASE}/prompt", status=400, json={
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                  "details": "", "extra_info": {}},
        "node_errors": {"1": {"class_type": "EmptyImage", "dependent_outputs": ["3"], "errors": [
            {"type": "value_smaller_than_min", "message": "Value -5 smaller than min of 1", "details": "width",
             "extra_info": {"input_name": "width"}}]}}})
    with pytest.raises(PromptRejected) as exc:
        ComfyUIClient(BASE).submit({}, prompt_id="p", client_id="c")
    assert str(exc.value) == ("Prompt outputs failed validation: node 1 (EmptyImage) input 'width': "
                              "Value -5 smaller than min of 1 (width)")
    assert exc.value.node_errors["1"]["class_type"] == "EmptyImage"


@responses.activate
def test_submit_sends_chosen_prompt_id_and_api_key():
    responses.post(f"{BASE}/prompt", json={"prompt_id": "p1", "number": 0, "node_errors": {}})
    ComfyUIClient(BASE, api_key="sk-1").submit({"1": {}}, prompt_id="p1", client_id="c")
    req = responses.calls[0].request
    body = json.loads(req.body)
    assert body["prompt_id"] == "p1" and body["client_id"] == "c"
    assert body["extra_data"] == {"api_key_comfy_org": "sk-1"}
    assert req.headers["Authorization"] == "Bearer sk-1"


@responses.activate
def test_login_redirect_is_an_auth_error_and_not_followed():
    responses.get(f"{BASE}/history/x", status=302, headers={"Location": "/login"})
    with pytest.raises(AuthError, match="login page"):
        ComfyUIClient(BASE).history("x")
    assert len(responses.calls) == 1


@responses.activate
def test_history_empty_means_pending():
    responses.get(f"{BASE}/history/x", json={})
    assert ComfyUIClient(BASE).history("x") is None


def test_view_url_is_encoded():
    url = ComfyUIClient(BASE).view_url("a b&c ü.png", "sub dir", "output")
    assert url == f"{BASE}/view?filename=a+b%26c+%C3%BC.png&subfolder=sub+dir&type=output"


@responses.activate
def test_stream_refuses_foreign_hosts():
    c = ComfyUIClient(BASE, api_key="sk-1")
    with pytest.raises(BackendError, match="outside this server"):
        list(c.stream("http://evil.test/view?filename=x"))
    assert not responses.calls


@pytest.mark.parametrize("text, expected", [
    ('{"a": "1", "b": "2"}', {"a": "1", "b": "2"}),
    ("a=1; b=2", {"a": "1", "b": "2"}),
])
def test_cookie_formats(text, expected):
    assert parse_cookies(text) == expected


@responses.activate
def test_cookies_from_url_are_fetched_without_credentials():
    responses.get("http://cookies.test/c.txt", body="session=abc")
    assert parse_cookies("http://cookies.test/c.txt") == {"session": "abc"}
    assert "Authorization" not in responses.calls[0].request.headers


def test_display_url_hides_credentials_and_query():
    c = ComfyUIClient("https://user:s3cret@gpu.example:8443/comfy/")
    assert c.display_url == "https://gpu.example:8443/comfy"
    with pytest.raises(ConfigError, match="pass tokens as api_key"):
        ComfyUIClient("https://gpu.example/?token=abc")
    from comfykit_batch.executors.comfyui_http import HttpExecutor

    assert "s3cret" not in HttpExecutor("https://user:s3cret@gpu.example:8443").name


@responses.activate
def test_200_with_node_errors_is_a_rejection_of_a_queued_prompt():
    responses.post(f"{BASE}/prompt", json={"prompt_id": "p", "number": 0, "node_errors": {
        "5": {"class_type": "EmptyImage", "errors": [{"message": "Value -5 smaller than min of 1", "details": "width",
                                                      "extra_info": {"input_name": "width"}}]}}})
    with pytest.raises(PromptRejected, match="node 5 \\(EmptyImage\\) input 'width'") as exc:
        ComfyUIClient(BASE).submit({}, prompt_id="p", client_id="c")
    assert exc.value.queued and not exc.value.transient and isinstance(exc.value, BackendError)


@pytest.mark.parametrize("host", ["gpu1", "comfyui", "localhost"])
@responses.activate
def test_cookies_go_to_single_label_and_localhost_backends(host):
    responses.get(f"http://{host}:8188/queue", json={})
    ComfyUIClient(f"http://{host}:8188", cookies="session=abc; b=2").queue()
    assert responses.calls[0].request.headers["Cookie"] == "session=abc; b=2"


@pytest.mark.parametrize("status, transient", [(500, True), (503, True), (429, True), (404, False)])
@responses.activate
def test_http_errors_map_to_backend_errors_with_the_body_scrubbed(status, transient):
    responses.get(f"{BASE}/queue", status=status, body="echo: Authorization: Bearer sk-1234567 cookie sess=val-9876")
    with pytest.raises(BackendError) as exc:
        ComfyUIClient(BASE, api_key="sk-1234567", cookies="sess=val-9876").queue()
    assert exc.value.transient is transient and f"HTTP {status}" in str(exc.value)
    assert "sk-1234567" not in str(exc.value) and "val-9876" not in str(exc.value)


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_401_403_are_auth_errors(status):
    responses.get(f"{BASE}/system_stats", status=status)
    with pytest.raises(AuthError, match=f"HTTP {status}"):
        ComfyUIClient(BASE).system_stats()
