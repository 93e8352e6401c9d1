"""Webhooks without a network: the ``notify:`` section, payloads, signatures, scrubbing, retries, the bounded queue.

Deliveries go through a recording ``post`` passed to the ``Notifier``; ``close()`` joins its thread, so a test
reads what was sent after it, never by waiting on a timer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from urllib.parse import quote

import pytest
import yaml

from comfykit_batch.batch.run.notify import Delivery, Notifier, run_event, run_summary
from comfykit_batch.batch.run.runner import Summary
from comfykit_batch.batch.run.stall import Stall
from comfykit_batch.batch.spec.manifest import ManifestError, load_manifest
from comfykit_batch.batch.spec.notify import DEFAULT_EVENTS, NotifySpec
from comfykit_batch.defaults import DEFAULTS

SECRET = "whsec-0123456789abcdef"
API_KEY = "rh-key-9f8e7d6c5b4a"
FAST = Delivery(backoff=0.0)


class Recorder:
    """A ``post`` answering from a script of statuses (then 200), keeping every request."""

    def __init__(self, statuses=(), gate: threading.Event | None = None):
        self.statuses = list(statuses)
        self.requests: list[tuple[str, bytes, dict]] = []
        self.gate, self.entered = gate, threading.Event()

    def __call__(self, url, body, headers, timeout):
        self.requests.append((url, body, dict(headers)))
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        return self.statuses.pop(0) if self.statuses else 200

    def payloads(self):
        return [json.loads(body) for _, body, _ in self.requests]


def notifier(post, events=DEFAULT_EVENTS, secrets=(), delivery=FAST, secret=SECRET):
    spec = NotifySpec(url="https://hooks.example.com/T0/B0/token-in-path", secret=secret, events=tuple(events))
    return Notifier(spec, batch="portraits", output="s3://bucket/out?X-Amz-Signature=abc", secrets=secrets,
                    delivery=delivery, post=post)


def record(i=1, status="completed", params=None, error=None):
    rec = {"id": f"job{i}", "seq": i, "workflow": "w", "params": params or {"cfg": 7}, "status": status, "backend": "gpu1",
           "attempts": 1, "duration": 1.5, "files": [{"var": "image", "kind": "output", "path": f"files/w/job{i}.png",
                                                      "size": 10, "sha256": "ab" * 32}]}
    if error:
        rec["error"] = error
    return rec


OOM = {"kind": "execution", "message": "CUDA out of memory", "node_id": "3", "node_type": "KSampler",
       "exception_type": "OutOfMemoryError", "transient": False, "traceback_tail": "Traceback ... long"}


# -- the manifest ----------------------------------------------------------------------------------------
def write(tmp_path, **extra):
    doc = {"name": "t", "workflows": [{"name": "w", "source": "w.json"}], "sweep": {"params": {"a": 1}}, **extra}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_notify_reads_url_and_secret_from_the_environment_and_keeps_them_out_of_repr(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com/T0/B0/token-in-path")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    m = load_manifest(write(tmp_path, notify={"url": "${HOOK_URL}", "secret": "${HOOK_SECRET}"}))
    assert m.notify is not None and m.notify.url.endswith("token-in-path") and m.notify.secret == SECRET
    assert m.notify.events == DEFAULT_EVENTS == ("run.finished", "run.failed", "run.stalled")
    assert m.notify.host == "https://hooks.example.com"
    assert "token-in-path" not in repr(m) and SECRET not in repr(m)


def test_no_notify_section_and_the_stop_default(tmp_path, monkeypatch):
    m = load_manifest(write(tmp_path))
    assert m.notify is None and m.stop_after_failures == DEFAULTS.stop_after_failures == 20
    monkeypatch.setenv("STOP", "0")
    m = load_manifest(write(tmp_path, defaults={"stop_after_failures": "${STOP}"},
                            notify={"url": "http://127.0.0.1:9/h", "events": ["job.failed", "run.failed", "job.failed"]}))
    assert m.stop_after_failures == 0
    assert m.notify is not None and m.notify.events == ("job.failed", "run.failed") and m.notify.secret is None


@pytest.mark.parametrize(("extra", "message"), [
    ({"notify": {"url": "https://h.example/x", "events": ["run.finished", "run.done"]}},
     r"m.yaml: notify.events\[1\]: expected one of 'run.finished', 'run.failed', 'run.stalled', 'job.failed', "
     r"'job.completed', got 'run.done'$"),
    ({"notify": {"url": "ftp://h.example/x?token=abc"}}, r"m.yaml: notify.url: expected an http\(s\):// URL, got 'ftp://h.example/x'$"),
    ({"notify": {"url": "h.example/x"}}, r"notify.url: expected an http\(s\):// URL"),
    ({"notify": {"secret": "x"}}, r"m.yaml: notify: missing required key 'url'$"),
    ({"notify": {"url": "https://h.example", "event": ["run.failed"]}}, r"notify: unknown key 'event' \(did you mean 'events'\?\)"),
    ({"notify": {"url": "https://h.example", "events": []}}, r"notify.events: expected at least 1 item\(s\)$"),
    ({"defaults": {"stop_after_failures": -1}}, r"m.yaml: defaults.stop_after_failures: expected a number >= 0, got -1$"),
    ({"defaults": {"stop_after_failures": 2.5}}, r"defaults.stop_after_failures: expected integer, got float"),
])
def test_bad_notify_values_are_one_line_naming_the_key_path(tmp_path, extra, message):
    with pytest.raises(ManifestError, match=message) as exc:
        load_manifest(write(tmp_path, **extra))
    assert "\n" not in str(exc.value)


def test_the_secret_is_never_in_a_manifest_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with pytest.raises(ManifestError) as exc:
        load_manifest(write(tmp_path, notify={"url": "https://h.example", "secret": "${HOOK_SECRET}", "events": [SECRET]}))
    assert SECRET not in str(exc.value) and "notify.events[0]" in str(exc.value)


# -- payloads and signatures ------------------------------------------------------------------------------
def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver writes: the same five lines as in the README."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_a_job_event_carries_the_job_and_running_counts_and_is_signed():
    post = Recorder()
    n = notifier(post, events=["job.completed", "job.failed"])
    n.job(record(1))
    n.job(record(2, "failed", error=OOM))
    n.close()
    first, second = post.payloads()
    assert first["event"] == "job.completed" and first["batch"] == "portraits"
    assert first["output"] == "s3://bucket/out" and first["counts"] == {"done": 1}
    assert first["job"] == {"id": "job1", "workflow": "w", "params": {"cfg": 7}, "status": "completed", "backend": "gpu1",
                            "attempts": 1, "duration": 1.5, "files": [{"var": "image", "path": "files/w/job1.png",
                                                                       "sha256": "ab" * 32}], "error": None}
    assert second["counts"] == {"done": 1, "failed": 1}
    assert second["failures"] == {"execution: node 3 (KSampler) raised OutOfMemoryError": 1}
    assert second["job"]["error"] == {"kind": "execution", "node_id": "3", "node_type": "KSampler",
                                      "exception_type": "OutOfMemoryError", "transient": False, "message": "CUDA out of memory"}
    for url, body, headers in post.requests:
        assert url.endswith("token-in-path") and headers["Content-Type"] == "application/json"
        assert headers["User-Agent"] and headers["X-ComfyKit-Event"] == json.loads(body)["event"]
        assert verify(SECRET, body, headers["X-ComfyKit-Signature"])
        assert not verify(SECRET, body + b" ", headers["X-ComfyKit-Signature"])


def test_unsubscribed_events_are_not_sent_and_no_secret_means_no_signature():
    post = Recorder()
    n = notifier(post, secret=None)
    n.job(record(1))
    n.job(record(2, "failed", error=OOM))
    n.run_ended("run.failed", {"done": 1, "failed": 1, "failures": {"x": 1}, "duration": 3.0})
    n.close()
    [(_, body, headers)] = post.requests
    assert "X-ComfyKit-Signature" not in headers
    sent = json.loads(body)
    assert sent["event"] == "run.failed" and sent["failures"] == {"x": 1} and sent["duration"] == 3.0
    assert sent["counts"] == {"done": 1, "failed": 1, "skipped": 0, "failed_earlier": 0, "not_run": 0}
    assert [f["id"] for f in sent["last_failures"]] == ["job2"] and "job" not in sent


def test_a_run_event_lists_only_the_last_five_failures():
    post = Recorder()
    n = notifier(post)
    for i in range(12):
        n.job(record(i, "failed", error=OOM))
    n.run_ended("run.failed", {"failed": 12})
    n.close()
    [sent] = post.payloads()
    assert [f["id"] for f in sent["last_failures"]] == [f"job{i}" for i in range(7, 12)]
    assert "traceback" not in json.dumps(sent)


def test_run_event_and_run_summary_read_the_runners_summary():
    def summary(**kw):
        return Summary(total=3, done=3, failed=0, skipped=0, interrupted=False, wall=9.87654, failures={}, backends={}, **kw)

    assert run_event(summary()) == "run.finished"
    assert run_event(summary(failed_earlier=1)) == run_event(summary(not_run=2)) == "run.failed"
    stalled = summary(stalled=Stall("execution", "3 (KSampler)", "CUDA out of memory", 20))
    assert run_event(stalled) == "run.stalled"
    assert run_summary(stalled) == {"done": 3, "failed": 0, "skipped": 0, "failed_earlier": 0, "not_run": 0, "failures": {},
                                    "duration": 9.877, "interrupted": False, "exit_code": 1,
                                    "stalled": {"kind": "execution", "node": "3 (KSampler)", "message": "CUDA out of memory"}}


def test_a_stalled_run_reaches_a_webhook_that_only_wants_run_failed():
    post = Recorder()
    n = notifier(post, events=["run.failed"])
    n.run_ended("run.stalled", {"failed": 20, "stalled": {"kind": "execution", "node": "3", "message": "oom"}})
    n.close()
    [sent] = post.payloads()
    assert sent["event"] == "run.failed" and sent["stalled"]["kind"] == "execution"
    with pytest.raises(ValueError):
        n.run_ended("job.failed", {})


# -- secrets ----------------------------------------------------------------------------------------------
def test_secrets_are_scrubbed_from_params_errors_and_keys_in_every_form():
    post = Recorder()
    n = notifier(post, events=["job.failed", "run.failed"], secrets=[API_KEY, None, "ab"])
    echoed = (f"server said: key={API_KEY} b64={base64.b64encode(API_KEY.encode()).decode()} "
              f"pct={quote(SECRET, safe='')} url=https://u:pw@host/x?sig=s3cr3t-sig")
    n.job(record(1, "failed", params={"prompt": f"a fox {SECRET}", API_KEY: "name-is-key"}, error={**OOM, "message": echoed}))
    n.run_ended("run.failed", {"failed": 1, "failures": {f"execution: {API_KEY}": 1}})
    n.close()
    assert len(post.requests) == 2
    for _, body, _ in post.requests:
        text = body.decode()
        for leak in (SECRET, API_KEY, base64.b64encode(API_KEY.encode()).decode(), quote(SECRET, safe=""), "s3cr3t-sig", "pw@"):
            assert leak not in text
        assert "***" in text
    assert post.payloads()[0]["job"]["params"]["prompt"] == "a fox ***"


def test_the_notifier_takes_every_credential_of_the_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("RH_KEY", API_KEY)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    m = load_manifest(write(tmp_path, backends=[{"type": "runninghub", "api_key": "${RH_KEY}"},
                                                {"url": "http://127.0.0.1:8188", "cookies": "session=cookie-value-123; a=b"}],
                            notify={"url": "https://h.example/x", "secret": "${HOOK_SECRET}", "events": ["job.failed"]}))
    post = Recorder()
    n = Notifier.for_manifest(m, delivery=FAST, post=post)
    assert n is not None and Notifier.for_manifest(load_manifest(write(tmp_path))) is None
    n.job(record(1, "failed", error={**OOM, "message": f"{API_KEY} cookie-value-123 {SECRET}"}))
    n.close()
    [sent] = post.payloads()
    assert sent["job"]["error"]["message"] == "*** *** ***" and sent["batch"] == "t"


# -- delivery ---------------------------------------------------------------------------------------------
def test_retries_after_5xx_and_429_then_delivers_and_gives_up_at_once_on_4xx_and_redirects(caplog):
    post = Recorder([500, 429, 503])
    n = notifier(post)
    n.run_ended("run.finished", {"done": 1})
    n.close()
    assert len(post.requests) == 4 and n.last is not None and n.last.ok and n.last.attempts == 4
    assert len({json.loads(b)["delivery"] for _, b, _ in post.requests}) == 1  # one delivery id across its attempts
    for status in (404, 302):
        post = Recorder([status])
        n = notifier(post)
        n.run_ended("run.failed", {"failed": 1})
        n.close()
        assert len(post.requests) == 1 and n.last is not None and not n.last.ok and n.outcomes["failed"] == 1
    assert "HTTP 302 (a redirect, not followed)" in caplog.text


def test_a_webhook_that_keeps_failing_is_tried_a_bounded_number_of_times():
    post = Recorder([500] * 100)
    n = notifier(post, events=["job.completed", "run.finished"], delivery=Delivery(attempts=3, backoff=0.0))
    for i in range(5):
        n.job(record(i))
    n.run_ended("run.finished", {"done": 5})
    n.close()
    # the first job event: 3 attempts; while failing, each later job event: 1; the run event: 3 again
    assert len(post.requests) == 3 + 4 + 3 and n.outcomes["failed"] == 6


def test_a_full_queue_drops_job_events_never_run_events(caplog):
    gate = threading.Event()
    post = Recorder(gate=gate)
    n = notifier(post, events=["job.completed", "run.finished"], delivery=Delivery(backoff=0.0, queue=3))
    n.job(record(0))
    assert post.entered.wait(10)  # the first delivery is in flight, held by the receiver
    for i in range(1, 11):
        n.job(record(i))
    n.run_ended("run.finished", {"done": 11})
    assert len(post.requests) == 1 and not gate.is_set()  # every call above returned while the receiver held the first
    gate.set()
    n.close()
    events = [p["event"] for p in post.payloads()]
    assert events == ["job.completed"] * 4 + ["run.finished"] and n.outcomes["dropped"] == 7
    assert "dropping job events" in caplog.text and "7 job event(s) dropped" in caplog.text


def test_a_post_that_raises_is_a_failed_delivery_never_an_error_of_the_caller(caplog):
    def broken(url, body, headers, timeout):
        raise ConnectionRefusedError(f"refused, and here is the secret {SECRET}")

    n = notifier(broken, delivery=Delivery(attempts=2, backoff=0.0))
    n.run_ended("run.finished", {})
    n.close()
    assert n.last is not None and n.last.status is None and n.last.reason == "connection refused"
    assert "connection refused" in caplog.text and SECRET not in caplog.text
