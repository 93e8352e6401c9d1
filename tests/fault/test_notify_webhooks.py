"""Webhooks against a real HTTP receiver on loopback: signatures, retries, a receiver that hangs, one that
redirects, one that echoes the secret, and ``comfykit-batch notify-test``.

Nothing here sleeps: a test waits on the receiver's events, and ``Notifier.close()`` joins the delivery thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from comfykit_batch.batch.run.notify import Delivery, Notifier
from comfykit_batch.batch.spec.notify import NotifySpec
from comfykit_batch.cli import main

SECRET = "whsec-fault-5d41402abc4b2a76"


class Receiver:
    """A webhook receiver: records every request, answers from a script (then 200), may hold each request."""

    def __init__(self, answers=(), hold: threading.Event | None = None):
        self.answers = list(answers)  # a status, or (status, reason, headers, body)
        self.requests: list[tuple[Message, bytes]] = []
        self.hold, self.entered = hold, threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()  # a quick shutdown

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def _answer(self):
        answer = self.answers.pop(0) if self.answers else 200
        return answer if isinstance(answer, tuple) else (answer, None, {}, b"ok")

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body))  # case-insensitive, as HTTP headers are
                receiver.entered.set()
                if receiver.hold is not None:
                    receiver.hold.wait()
                status, reason, headers, text = receiver._answer()
                self.send_response(status, reason)
                for name, value in {"Content-Length": str(len(text)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(*answers, hold=None):
        made.append(Receiver(answers, hold))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def notifier(url, events=("job.completed", "job.failed", "run.finished", "run.failed"), **delivery):
    spec = NotifySpec(url=url + "/hook", secret=SECRET, events=tuple(events))
    return Notifier(spec, batch="night", output="output/night", delivery=Delivery(**{"backoff": 0.0, **delivery}))


def verified(headers: Message, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-ComfyKit-Signature"])


def record(i, status="completed"):
    return {"id": f"j{i}", "params": {"seed": i}, "status": status, "files": [{"path": f"files/w/j{i}.png", "sha256": "0" * 64}],
            **({"error": {"kind": "execution", "message": "boom", "node_id": "4"}} if status == "failed" else {})}


def test_every_delivery_is_signed_with_the_secret(receivers):
    r = receivers()
    n = notifier(r.url)
    n.job(record(1))
    n.job(record(2, "failed"))
    n.run_ended("run.failed", {"done": 1, "failed": 1})
    n.close()
    assert [json.loads(body)["event"] for _, body in r.requests] == ["job.completed", "job.failed", "run.failed"]
    assert all(verified(headers, body) for headers, body in r.requests)
    assert all(h["Content-Type"] == "application/json" for h, _ in r.requests) and n.outcomes["delivered"] == 3


def test_a_500_is_retried_until_the_receiver_takes_it(receivers):
    r = receivers(500, 502)
    n = notifier(r.url)
    n.run_ended("run.finished", {"done": 4})
    n.close()
    assert len(r.requests) == 3 and len({body for _, body in r.requests}) == 1
    assert all(verified(h, b) for h, b in r.requests) and n.last is not None and n.last.ok and n.last.attempts == 3


def test_a_receiver_that_never_answers_does_not_block_the_batch(receivers):
    hold = threading.Event()
    r = receivers(hold=hold)
    n = notifier(r.url, queue=4, request_timeout=60)
    n.job(record(0))
    assert r.entered.wait(10)  # the first delivery has reached the receiver, which holds it
    for i in range(1, 50):
        n.job(record(i, "failed" if i % 2 else "completed"))
    n.run_ended("run.failed", {"done": 25, "failed": 25})
    assert not hold.is_set() and len(r.requests) == 1  # every call returned while the receiver still held the first
    hold.set()
    n.close()
    events = [json.loads(body)["event"] for _, body in r.requests]
    assert len(events) == 1 + 4 + 1 and events[-1] == "run.failed" and n.outcomes["dropped"] == 45


def test_close_is_bounded_while_the_receiver_still_hangs(receivers):
    hold = threading.Event()
    r = receivers(hold=hold)
    n = notifier(r.url, request_timeout=60)
    n.run_ended("run.finished", {"done": 1})
    assert r.entered.wait(10)
    n.close(timeout=0.05)
    assert not hold.is_set() and n.last is None  # close returned; the receiver has not answered


def test_a_redirect_is_not_followed(receivers, caplog):
    target = receivers()
    r = receivers((307, None, {"Location": target.url + "/elsewhere"}, b""), (302, None, {"Location": target.url}, b""))
    n = notifier(r.url)
    n.run_ended("run.finished", {"done": 1})
    n.run_ended("run.failed", {"failed": 1})
    n.close()
    assert target.requests == [] and len(r.requests) == 2 and n.outcomes["failed"] == 2
    assert "HTTP 307 (a redirect, not followed)" in caplog.text


def test_a_receiver_echoing_the_secret_never_gets_it_into_the_logs(receivers, caplog):
    caplog.set_level(logging.DEBUG)
    b64 = base64.b64encode(SECRET.encode()).decode()
    echo = (500, f"bad {SECRET}", {"X-Echo": SECRET}, f"signature check failed for {SECRET} ({b64})".encode())
    r = receivers(echo, echo, echo, echo)
    n = notifier(r.url)
    n.run_ended("run.failed", {"failed": 1})
    n.close()
    assert len(r.requests) == 4 and n.outcomes["failed"] == 1
    assert "HTTP 500" in caplog.text
    logged = caplog.text + "".join(str(rec.args) + rec.getMessage() for rec in caplog.records)
    assert SECRET not in logged and b64 not in logged


# -- comfykit-batch notify-test ----------------------------------------------------------------------------
def manifest(tmp_path, **extra):
    doc = {"name": "night", "workflows": [{"name": "w", "source": "w.json"}], "sweep": {"params": {"a": 1}}, **extra}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_notify_test_sends_a_signed_sample_and_prints_the_status(receivers, tmp_path, monkeypatch, capsys):
    r = receivers()
    monkeypatch.setenv("HOOK_URL", r.url + "/hook/token-in-path?t=abc")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    path = manifest(tmp_path, notify={"url": "${HOOK_URL}", "secret": "${HOOK_SECRET}", "events": ["job.failed"]})
    assert main(["notify-test", path]) == 0
    out = capsys.readouterr().out
    assert out == f"webhook {r.url}: test event delivered (HTTP 200)\n"
    [(headers, body)] = r.requests
    sent = json.loads(body)
    assert verified(headers, body) and sent["event"] == "run.finished" and sent["test"] is True and sent["batch"] == "night"


@pytest.mark.parametrize(("answers", "said"), [((500,), "HTTP 500"), ((301,), "HTTP 301 (a redirect, not followed)")])
def test_notify_test_fails_in_one_line_on_anything_but_2xx(receivers, tmp_path, capsys, answers, said):
    r = receivers(*answers)
    assert main(["notify-test", manifest(tmp_path, notify={"url": r.url, "secret": SECRET})]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"error: webhook {r.url}: test event not delivered ({said})\n"
    assert len(r.requests) == 1  # one attempt: what the receiver answered is what is printed


def test_notify_test_without_a_notify_section_is_a_usage_error(tmp_path, capsys):
    assert main(["notify-test", manifest(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no notify: section" in err
