"""The ComfyUI client's pure parts: cookies, node-error lines, URLs, headers (no network)."""

import pytest

from comfykit_batch.errors import BackendError, ConfigError
from comfykit_batch.executors.comfyui_client import ComfyUIClient, format_node_errors, parse_cookies

BASE = "http://comfy.test:8188"


def test_node_errors_become_one_readable_line():
    error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"}
    node_errors = {"1": {"class_type": "EmptyImage", "dependent_outputs": ["3"], "errors": [
        {"type": "value_smaller_than_min", "message": "Value -5 smaller than min of 1", "details": "width",
         "extra_info": {"input_name": "width"}}]}}
    assert format_node_errors(error, node_errors) == (
        "Prompt outputs failed validation: node 1 (EmptyImage) input 'width': Value -5 smaller than min of 1 (width)")


def test_odd_node_errors_never_crash_the_line():
    assert format_node_errors({}, {"1": "x", "2": {"errors": ["y", {"extra_info": "z"}]}}) == "prompt rejected: node 2 (?): invalid"


def test_view_url_is_encoded():
    url = ComfyUIClient(BASE).view_url("a b&c ü.png", "sub dir", "output")
    assert url == f"{BASE}/view?filename=a+b%26c+%C3%BC.png&subfolder=sub+dir&type=output"


def test_stream_refuses_foreign_hosts():
    c = ComfyUIClient(BASE, api_key="sk-1")
    with pytest.raises(BackendError, match="outside this server"):
        list(c.stream("http://evil.test/view?filename=x"))


@pytest.mark.parametrize("text, expected", [
    ('{"a": "1", "b": "2"}', {"a": "1", "b": "2"}),
    ("a=1; b=2", {"a": "1", "b": "2"}),
])
def test_cookie_formats(text, expected):
    assert parse_cookies(text) == expected


@pytest.mark.parametrize("host", ["gpu1", "comfyui", "localhost", "gpu.example"])
def test_cookies_are_a_header_for_any_host_name(host):
    """No cookie jar: its domain matching drops cookies for localhost and single-label hosts."""
    c = ComfyUIClient(f"http://{host}:8188", cookies="session=abc; b=2", api_key="sk-1")
    assert c.pool.headers["Cookie"] == "session=abc; b=2" and c.pool.headers["Authorization"] == "Bearer sk-1"


def test_display_url_hides_credentials_and_query():
    c = ComfyUIClient("https://user:s3cret@gpu.example:8443/comfy/")
    assert c.display_url == "https://gpu.example:8443/comfy"
    with pytest.raises(ConfigError, match="pass tokens as api_key"):
        ComfyUIClient("https://gpu.example/?token=abc")
    from comfykit_batch.executors.comfyui_http import HttpExecutor

    assert "s3cret" not in HttpExecutor("https://user:s3cret@gpu.example:8443").name


def test_cookies_from_url_are_fetched_without_credentials():
    import responses

    with responses.RequestsMock() as mock:
        mock.get("http://cookies.test/c.txt", body="session=abc")
        assert parse_cookies("http://cookies.test/c.txt") == {"session": "abc"}
        assert "Authorization" not in mock.calls[0].request.headers
