"""Issue 19 on the fake ComfyUI: a marker the server would ignore, secrets echoed encoded, a redirect on /view."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
from collections import deque
from urllib.parse import quote, quote_plus

import pytest

from comfykit_batch import ParameterError, Workflow
from comfykit_batch.cli import main
from comfykit_batch.errors import AuthError
from comfykit_batch.executors.comfyui_http import HttpExecutor
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor
from tests.helpers.manifests import ROOT, write_manifest

BOTH = pytest.mark.parametrize("cls", [HttpExecutor, WebSocketExecutor], ids=["http", "websocket"])


def _invert(workflows, title: str = "Size, $w.Width") -> dict:
    """invert.json with a stale ``Width`` key beside ``width``: only the server can tell the marker is wrong."""
    data = json.loads((workflows / "invert.json").read_text())
    data["1"]["inputs"]["Width"] = 64
    data["1"]["_meta"]["title"] = title
    return data


# -- a marker naming an input the server does not list ----------------------------------------------------


@BOTH
def test_library_refuses_the_marker_before_submitting(cls, fake_comfy, workflows):
    wf = Workflow(_invert(workflows))
    with cls(fake_comfy.url) as ex:
        with pytest.raises(ParameterError, match=r"'\$w\.Width'.*did you mean 'width'"):
            ex.prepare(wf)
        with pytest.raises(ParameterError, match=r"node 1 \(EmptyImage\)"):
            ex.execute(wf, {"w": 8}, timeout=10)
    assert fake_comfy.submitted == []


@BOTH
def test_a_partly_described_node_is_logged_and_still_runs(cls, fake_comfy, workflows, caplog):
    """A node listing only optional inputs (dynamic ones are added in the browser): warned once, not refused."""
    data = _invert(workflows, "Size, $width")
    data["4"] = {"class_type": "Dynamic", "inputs": {"value_3": 1}, "_meta": {"title": "$extra.value_3"}}
    fake_comfy.classes["Dynamic"] = {}
    info = {c: {"input": {"required": spec}} for c, spec in fake_comfy.classes.items()}
    info["Dynamic"] = {"input": {"required": {}, "optional": {"value_1": ["INT", {}]}}}
    fake_comfy.script["GET /object_info"] = deque([(200, info)])
    caplog.set_level(logging.WARNING, logger="comfykit_batch")
    with cls(fake_comfy.url) as ex:
        for extra in (5, 6):
            assert ex.execute(Workflow(data), {"width": 4, "extra": extra}, timeout=10).status == "completed"
    warned = [r.getMessage() for r in caplog.records if "'$extra.value_3'" in r.getMessage()]
    assert len(warned) == 1 and "Dynamic lists no required input" in warned[0]
    assert [s["prompt"]["4"]["inputs"]["value_3"] for s in fake_comfy.submitted] == [5, 6]


@pytest.mark.parametrize("check_nodes", [True, False])
def test_batch_refuses_the_marker_before_the_first_job(tmp_path, fake_comfy, workflows, capsys, check_nodes):
    wf = tmp_path / "stale.json"
    wf.write_text(json.dumps(_invert(workflows)))
    m = write_manifest(tmp_path, [{"name": "f", "url": fake_comfy.url}], workflow=wf, sweep={"grid": {"w": [8, 16]}},
                       defaults={"check_nodes": check_nodes})
    assert main([str(m), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {m}: workflow 'w' on backend 'f': ")
    assert "node 1 (EmptyImage)" in err and "'$w.Width'" in err and "did you mean 'width'" in err
    assert "inputs it lists: batch_size, color, height, width" in err
    assert fake_comfy.submitted == []


# -- secrets echoed back percent-encoded and base64-encoded ----------------------------------------------------

KEY = "sk-live/Ab+c=d_0123456789xyz"
COOKIE = "c00k/ie+val=ue-42"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), text)


def _echoed() -> list[str]:
    """What a proxy that echoes the request shows of the key and cookie, in every encoding the issue names."""
    forms = []
    for secret in (KEY, COOKIE):
        raw = secret.encode()
        forms += [quote(secret, safe=""), quote(secret), quote_plus(secret), _lower_hex(quote(secret, safe="")),
                  _b64(raw), _b64(raw).rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    forms += [_b64(b"user:" + KEY.encode()), _b64(f"session={COOKIE}".encode()), quote(f"session={COOKIE}", safe="")]
    return forms


def _leaks(text: str) -> list[str]:
    """The echoed forms (or the secrets themselves) found in ``text``."""
    return [f for f in [KEY, COOKIE, *_echoed()] if f in text]


def _reject_echoing(fake) -> None:
    message = "invalid token; request was: " + " ".join(_echoed())
    fake.script["POST /prompt"] = deque([(400, {"error": {"message": message}, "node_errors": {}})])


def test_encoded_forms_are_really_different_from_the_secrets():
    assert all(KEY not in f and COOKIE not in f for f in _echoed())


@BOTH
def test_library_result_never_carries_an_encoded_secret(cls, fake_comfy, workflows, caplog):
    caplog.set_level(logging.DEBUG)
    _reject_echoing(fake_comfy)
    with cls(fake_comfy.url, api_key=KEY, cookies={"session": COOKIE}) as ex:
        r = ex.execute(Workflow.from_file(workflows / "invert.json"), {"width": 4}, timeout=10)
    assert r.status == "failed" and r.failure is not None and r.msg.count("***") >= len(set(_echoed()))
    for text in (r.msg, r.failure.message, repr(r), json.dumps(r.model_dump(extras=True, mode="json")), caplog.text):
        assert _leaks(text) == []


def test_a_node_error_and_its_traceback_lose_encoded_secrets(fake_comfy, workflows):
    """A node that raised with the request in its message: message and traceback both reach the index."""
    def entry(path: str):
        pid = path.rsplit("/", 1)[-1]
        err = {"prompt_id": pid, "node_id": "1", "node_type": "EmptyImage", "exception_type": "ValueError",
               "exception_message": f"bad auth {_b64(b'user:' + KEY.encode())}",
               "traceback": [f"  headers={quote_plus(COOKIE)}\n", f"ValueError: {quote(KEY)}\n"]}
        return 200, {pid: {"outputs": {}, "status": {"status_str": "error", "completed": False,
                                                     "messages": [["execution_error", err]]}}}

    fake_comfy.script["GET /history"] = deque([entry])
    with HttpExecutor(fake_comfy.url, api_key=KEY, cookies={"session": COOKIE}) as ex:
        r = ex.execute(Workflow.from_file(workflows / "invert.json"), {"width": 4}, timeout=10)
    assert r.failure is not None and r.failure.kind == "execution" and r.failure.traceback
    assert "***" in r.failure.message and r.failure.traceback.count("***") == 2
    assert _leaks(r.msg) == _leaks(r.failure.traceback) == _leaks(repr(r)) == []


def test_batch_index_gallery_and_output_never_carry_an_encoded_secret(tmp_path, fake_comfy, workflows):
    _reject_echoing(fake_comfy)
    m = write_manifest(tmp_path, [{"name": "f", "url": fake_comfy.url, "api_key": "${TEST_I19_KEY}",
                                   "cookies": "${TEST_I19_COOKIES}"}],
                       workflow=workflows / "invert.json", sweep={"params": {"width": 4}})
    env = dict(os.environ, PYTHONPATH=str(ROOT), TEST_I19_KEY=KEY, TEST_I19_COOKIES=f"session={COOKIE}")
    proc = subprocess.run([sys.executable, "-m", "comfykit_batch", str(m), "-vv"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    out = tmp_path / "out"
    index = json.loads((out / "index.json").read_text())["jobs"]
    assert index[0]["error"]["kind"] == "rejected" and "***" in index[0]["error"]["message"], "the echo was recorded"
    assert "***" in proc.stdout, "the summary showed the (scrubbed) reason"
    names = {p.name for p in out.rglob("*") if p.is_file()}
    assert {"index.json", "index.sqlite", "gallery.html"} <= names
    for text in (proc.stdout, proc.stderr):
        assert _leaks(text) == []
    for path in out.rglob("*"):
        if path.is_file():
            assert _leaks(path.read_bytes().decode("latin-1")) == [], f"a secret leaked into {path.name}"


# -- a redirect answered on /view -------------------------------------------------------------------------------


@BOTH
def test_a_redirect_on_view_is_an_auth_error_from_download(cls, fake_comfy, workflows, tmp_path):
    fake_comfy.script["GET /view"] = deque([(302, b"", {"Location": "/login"})])
    with cls(fake_comfy.url) as ex:
        r = ex.execute(Workflow.from_file(workflows / "invert.json"), {"width": 4}, timeout=10)
        with pytest.raises(AuthError, match="redirect to a login page"):
            ex.download(r.files[0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
