"""Issue 20, the executors' edge: one table from foreign exception types to this package's errors, causes kept
and scrubbed, timings handed down instead of patched."""

from __future__ import annotations

import errno
import traceback
from collections import deque
from pathlib import Path

import pytest
import requests
import urllib3.exceptions as u3

from comfykit_batch.defaults import TIMINGS, Timings
from comfykit_batch.errors import AuthError, BackendError, FetchError, exception_chain
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor
from comfykit_batch.executors.factory import create_executor
from comfykit_batch.executors.lifecycle import Stop, read_upload
from comfykit_batch.executors.runninghub import RunningHubExecutor
from comfykit_batch.executors.transport import (
    CONNECTION_FAILED,
    REFUSED,
    Redactor,
    cause_of,
    mapped,
    reason,
)
from comfykit_batch.uploads import UploadSource
from comfykit_batch.workflow import PendingUpload
from tests.fakes.fake_comfyui import FakeComfyUI

KEY = "sk-SECRET-key-0123456789"


def printed(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def caused(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised from ``inner``, as libraries wrap socket errors."""
    outer.__cause__ = inner
    return outer


# -- the table ----------------------------------------------------------------------------------------------


def test_a_refusal_is_found_by_type_anywhere_in_the_chain() -> None:
    try:
        requests.get("http://127.0.0.1:9/", timeout=2)  # port 9 (discard): nothing listens
    except requests.RequestException as exc:
        assert cause_of(exc) is REFUSED


def test_message_text_never_decides() -> None:
    assert cause_of(OSError("Connection refused by a proxy's policy")) is CONNECTION_FAILED
    assert reason(OSError("Name or service not known")) == CONNECTION_FAILED.reason


def test_a_failed_connection_is_not_a_connect_timeout() -> None:
    """urllib3 2 makes NewConnectionError a ConnectTimeoutError: an unreachable network is no timeout."""
    unreachable = OSError(errno.ENETUNREACH, "Network is unreachable")
    exc = caused(requests.ConnectionError("wrapped"), caused(u3.NewConnectionError(None, "failed"), unreachable))  # type: ignore[arg-type]
    assert cause_of(exc) is CONNECTION_FAILED


def test_mapped_keeps_the_scrubbed_cause_and_lets_other_errors_pass() -> None:
    with pytest.raises(BackendError, match="srv: GET /x: connection failed") as err:
        with mapped("GET /x", "srv", Redactor([KEY])):
            raise OSError(f"a proxy echoed Authorization: Bearer {KEY}")
    assert err.value.transient and isinstance(err.value.__cause__, OSError) and KEY not in printed(err.value)
    with pytest.raises(BackendError, match="unusable answer") as err:
        with mapped("GET /x", "srv"):
            raise ValueError("not JSON")
    assert not err.value.transient
    with pytest.raises(RuntimeError), mapped("GET /x", "srv"):
        raise RuntimeError("a bug is not the server's fault")


def test_runninghub_keeps_the_requests_error_without_the_request_that_held_the_key() -> None:
    with RunningHubExecutor("http://127.0.0.1:9", KEY, retry_count=0, timings=Timings(retry_first=0.01)) as ex:
        with pytest.raises(BackendError, match="connection refused") as err:
            ex.check()
    causes = [e for e in exception_chain(err.value) if isinstance(e, requests.RequestException)]
    assert causes and causes[0].request is None and KEY not in printed(err.value)


def test_a_refused_websocket_handshake_keeps_its_cause_without_the_echoed_key(fake_comfy: FakeComfyUI) -> None:
    echo = f"Authorization: Bearer {KEY}".encode()
    fake_comfy.script["GET /ws"] = deque([(401, echo, {"X-Echo": KEY})])
    with WebSocketExecutor(fake_comfy.url, api_key=KEY) as ex:
        with pytest.raises(AuthError, match="websocket /ws: HTTP 401") as err:
            ex.check()
    assert err.value.__cause__ is not None and KEY not in printed(err.value)


# -- uploads that cannot be read ----------------------------------------------------------------------------


def test_an_upload_that_cannot_be_fetched_fails_the_job_with_the_fetch_reason() -> None:
    up = PendingUpload("image", UploadSource("url", "a.png", url="http://127.0.0.1:9/a.png?sig=SECRETSIG"), [])
    with pytest.raises(Stop) as stop:
        read_upload(up)
    assert stop.value.failure.kind == "upload" and stop.value.failure.message.endswith(": could not connect")
    assert isinstance(stop.value.__cause__, FetchError) and "SECRETSIG" not in printed(stop.value)


def test_a_missing_local_upload_names_the_file_system_reason(tmp_path: Path) -> None:
    up = PendingUpload("image", UploadSource("path", "gone.png", path=tmp_path / "gone.png"), [])
    with pytest.raises(Stop, match="No such file or directory") as stop:
        read_upload(up)
    assert isinstance(stop.value.__cause__, FileNotFoundError)


# -- timings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, executor", [("comfyui", "http"), ("comfyui", "ws"), ("runninghub", None)])
def test_the_factory_hands_timings_down(kind: str, executor: str | None) -> None:
    quick = Timings(lost_check=0.1, socket_safety_poll=0.1, retry_first=0.01)
    with create_executor("http://127.0.0.1:9", type=kind, executor=executor, api_key="k", timings=quick) as ex:
        assert ex.timings is quick  # type: ignore[attr-defined]
    with create_executor("http://127.0.0.1:9", type=kind, executor=executor, api_key="k") as ex:
        assert ex.timings is TIMINGS  # type: ignore[attr-defined]
