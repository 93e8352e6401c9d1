"""What a real ComfyUI cannot be made to do on demand: drops, 5xx, races, restarts."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from comfykit_batch import Workflow
from comfykit_batch.defaults import Timings
from comfykit_batch.errors import AuthError, BackendError
from comfykit_batch.executors.comfyui_http import HttpExecutor
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor
from tests.helpers.waiting import wait_for

BOTH = pytest.mark.parametrize("cls", [HttpExecutor, WebSocketExecutor], ids=["http", "websocket"])


@pytest.fixture
def wf(workflows):
    return Workflow.from_file(workflows / "invert.json")


@BOTH
def test_history_lagging_behind_success_event(cls, fake_comfy, wf):
    fake_comfy.history_lag = 0.3
    fake_comfy.cached_nodes = ["3"]  # an output node cached by an older server: no event, so /history is read
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "completed" and r.images_by_var["inverted"]
    assert ("GET", f"/history/{r.prompt_id}") in fake_comfy.requests


def _history_reads(fake_comfy, prompt_id: str) -> int:
    return sum(1 for m, p in fake_comfy.requests if p == f"/history/{prompt_id}")


@pytest.mark.parametrize("cached", [[], ["1", "2"]])
def test_websocket_outputs_come_from_the_prompts_own_events(fake_comfy, wf, cached):
    """One connection saw the whole prompt end in success: its executed events are the history entry's outputs.

    Cached nodes that are not output nodes (a model loader) never have an output to tell.
    """
    fake_comfy.cached_nodes = cached
    with HttpExecutor(fake_comfy.url) as http, WebSocketExecutor(fake_comfy.url) as ws:
        by_history, by_events = http.execute(wf, {"width": 4}, timeout=10), ws.execute(wf, {"width": 4}, timeout=10)
    assert by_events.status == "completed" and _history_reads(fake_comfy, by_events.prompt_id) == 0
    shape = [(f.var, f.kind, f.node_id, f.type, f.subfolder) for f in by_history.files]
    assert shape and [(f.var, f.kind, f.node_id, f.type, f.subfolder) for f in by_events.files] == shape
    assert by_events.texts_by_var == by_history.texts_by_var


@pytest.mark.parametrize("fault", ["dropped socket", "cached output node without its event", "start not seen",
                                   "failed prompt"])
def test_websocket_reads_history_when_the_events_may_not_tell_all(fault, fake_comfy, wf):
    fake_comfy.work_seconds = 0.2
    if fault == "dropped socket":
        fake_comfy.drop_ws_on_start = 1
    elif fault == "cached output node without its event":
        fake_comfy.cached_nodes = ["3"]
    elif fault == "start not seen":  # the events before may have gone elsewhere: the end alone proves nothing
        fake_comfy.muted_events = {"execution_start"}
    else:
        wf = Workflow({"1": {"class_type": "Raise", "inputs": {"message": "boom"}}})
    with WebSocketExecutor(fake_comfy.url) as ex:
        r = ex.execute(wf, {}, timeout=10) if fault == "failed prompt" else ex.execute(wf, {"width": 4}, timeout=10)
    assert _history_reads(fake_comfy, r.prompt_id) >= 1
    if fault == "failed prompt":
        assert r.status == "failed" and r.failure.kind == "execution" and "boom" in r.msg
    else:
        assert r.status == "completed" and r.images_by_var["inverted"]


def test_websocket_drop_mid_job_falls_back_to_history(fake_comfy, wf):
    fake_comfy.work_seconds = 0.3
    fake_comfy.drop_ws_on_start = 1
    with WebSocketExecutor(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
        assert r.status == "completed" and r.images
        # and the socket comes back for the next job: progress events flow again
        events = []
        r2 = ex.execute(wf, {"width": 5}, timeout=10, on_progress=events.append)
    assert r2.status == "completed" and events


def test_websocket_without_any_events_still_completes(fake_comfy, wf):
    """A proxy that swallows events: completion is still found through /history."""
    fake_comfy.send_events = False
    with WebSocketExecutor(fake_comfy.url, timings=Timings(socket_safety_poll=0.2)) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "completed"


@BOTH
def test_5xx_on_submit_is_a_transient_failure(cls, fake_comfy, wf):
    fake_comfy.submit_failures.append(503)
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
        assert r.status == "failed" and r.failure.kind == "connection" and r.failure.transient
        assert "HTTP 503" in r.msg
        assert ex.execute(wf, {"width": 4}, timeout=10).status == "completed"


@BOTH
def test_server_down_is_a_transient_failure(cls, wf):
    with cls("http://127.0.0.1:9") as ex:
        r = ex.execute(wf, {"width": 4}, timeout=5)
    assert r.status == "failed" and r.failure.transient and r.failure.kind == "connection"


@BOTH
def test_server_restart_loses_the_prompt(cls, fake_comfy, wf):
    fake_comfy.work_seconds = 30

    def restart_once_running() -> None:  # syncs on the server's state, not on a timer
        wait_for(lambda: fake_comfy.queue_state()["queue_running"])
        fake_comfy.restart()

    threading.Thread(target=restart_once_running, daemon=True).start()
    with cls(fake_comfy.url, timings=Timings(lost_check=0.2, socket_safety_poll=0.2)) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=60)
    assert r.status == "failed" and r.failure.transient and r.failure.kind in ("server", "connection")
    assert r.prompt_id not in fake_comfy.history, "the restarted server never finished it: the job did not wait for it"


@BOTH
def test_timeout_removes_queued_prompt(cls, fake_comfy, wf):
    fake_comfy.work_seconds = 2
    with cls(fake_comfy.url) as ex:
        blocker = threading.Thread(target=ex.execute, args=(wf, {"width": 1}), kwargs={"timeout": 10})
        blocker.start()
        wait_for(lambda: fake_comfy.queue_state()["queue_running"])  # the first prompt holds the server
        r = ex.execute(wf, {"width": 2}, timeout=0.5)
        assert r.status == "failed" and r.failure.kind == "timeout"
        assert all(p[1] != r.prompt_id for p in fake_comfy.queue_state()["queue_pending"])
        blocker.join()


# -- answers that are not what the protocol promises ------------------------------------------------


@BOTH
def test_invalid_json_from_history_is_survived(cls, fake_comfy, wf):
    fake_comfy.script["GET /history"] = deque([(200, b"<html>proxy hiccup</html>")])
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "completed" and r.images_by_var["inverted"]


@BOTH
def test_invalid_json_from_submit_is_a_failed_result(cls, fake_comfy, wf):
    fake_comfy.script["POST /prompt"] = deque([(200, b"{not json")])
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "failed" and r.failure.kind == "connection" and "not valid JSON" in r.msg


@BOTH
def test_truncated_answer_is_a_transient_failure(cls, fake_comfy, wf):
    fake_comfy.script["POST /prompt"] = deque(["truncate"])
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "failed" and r.failure.kind == "connection" and r.failure.transient
    assert "dropped" in r.msg


def test_download_that_stops_midway_leaves_no_file(fake_comfy, wf, tmp_path):
    with HttpExecutor(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
        fake_comfy.script["GET /view"] = deque(["cut"])
        with pytest.raises(BackendError, match="dropped") as err:
            ex.download(r.files[0], tmp_path / "out.png")
    assert err.value.transient
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a partial file


@BOTH
def test_history_read_that_never_completes_ends_at_the_calls_limit(cls, fake_comfy, wf):
    fake_comfy.work_seconds = 0.2
    fake_comfy.drop_ws_on_start = 1  # the socket's events are then not enough: /history is read
    fake_comfy.script["GET /history"] = deque(["stall"] * 10)
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=2)
        default_read = ex.client.timeout[1]
    assert r.status == "failed" and r.failure.kind == "timeout" and r.failure.transient
    assert r.duration < default_read  # the stalled read was cut at the deadline, not at its own 60 s
    assert ("POST", "/interrupt") in fake_comfy.requests


@BOTH
def test_submit_that_never_answers_ends_at_the_calls_limit(cls, fake_comfy, wf):
    fake_comfy.script["POST /prompt"] = deque(["stall"])
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=1.5)
    assert r.status == "failed" and r.failure.kind == "timeout"
    assert ("POST", "/interrupt") in fake_comfy.requests  # it may have been queued: removed to be sure


def test_websocket_ignores_other_clients_prompts(fake_comfy, wf):
    fake_comfy.foreign_events = True
    fake_comfy.work_seconds = 0.3
    with WebSocketExecutor(fake_comfy.url) as ex:
        events = []
        r = ex.execute(wf, {"width": 4}, timeout=10, on_progress=events.append)
    assert r.status == "completed" and r.images_by_var["inverted"]
    assert events and all(e.prompt_id == r.prompt_id for e in events)
    looked_up = {p for m, p in fake_comfy.requests if p.startswith("/history/")}
    assert looked_up <= {f"/history/{r.prompt_id}"}  # never another prompt's


@BOTH
def test_unknown_output_kind_is_kept_as_a_file(cls, fake_comfy, tmp_path):
    wf = Workflow({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveMesh", "inputs": {"source": ["1", 0]}, "_meta": {"title": "$output.mesh"}},
    })
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {}, timeout=10)
        assert r.status == "completed", r.msg
        (f,) = r.files
        assert (f.kind, f.var, f.node_id) == ("file", "mesh", "2") and f.filename.endswith(".glb")
        assert ex.download(f, tmp_path / "m.glb").size == len(b"glTF-fake")


@BOTH
def test_partly_invalid_prompt_fails_validation_and_is_stopped(cls, fake_comfy, wf):
    bad = Workflow({**{k: v for k, v in wf.nodes.items()},
                    "11": {"class_type": "EmptyImage", "inputs": {"width": -5, "height": 4, "batch_size": 1, "color": 0}},
                    "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "bad"}}})
    with cls(fake_comfy.url) as ex:
        r = ex.execute(bad, {"width": 4}, timeout=10)
    assert r.status == "failed" and r.failure.kind == "validation" and not r.failure.transient
    assert "node 11 (EmptyImage) input 'width'" in r.msg and "smaller than min" in r.msg
    assert ("POST", "/queue") in fake_comfy.requests and ("POST", "/interrupt") in fake_comfy.requests


# -- secrets -----------------------------------------------------------------------------------------


def test_websocket_redirect_is_refused_and_reported_as_auth(fake_comfy, wf):
    from tests.fakes.fake_comfyui import FakeComfyUI

    elsewhere = FakeComfyUI().start()
    try:
        fake_comfy.ws_redirect = elsewhere.url + "/ws"
        with WebSocketExecutor(fake_comfy.url, api_key="sk-secret-1234", cookies="session=c00kie-value") as ex:
            with pytest.raises(AuthError, match="redirect refused"):
                ex.check()
            r = ex.execute(wf, {"width": 4}, timeout=10)
        assert r.status == "failed" and r.failure.kind == "auth" and not r.failure.transient
        assert elsewhere.headers == []  # the other host never saw a request, let alone the key
        assert not fake_comfy.submitted
    finally:
        elsewhere.stop()


@BOTH
def test_cookies_reach_a_localhost_backend_on_every_request(cls, fake_comfy, wf):
    url = fake_comfy.url.replace("127.0.0.1", "localhost")
    with cls(url, cookies="session=c00kie-value; other=2") as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "completed"
    assert fake_comfy.headers and all(h.get("Cookie") == "session=c00kie-value; other=2" for _, _, h in fake_comfy.headers)
    if cls is WebSocketExecutor:
        assert any(p == "/ws" for _, p, _ in fake_comfy.headers)


@BOTH
def test_5xx_body_echoing_the_request_never_carries_secrets(cls, fake_comfy, wf, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    fake_comfy.echo_headers = True
    fake_comfy.submit_failures.append(500)
    with cls(fake_comfy.url, api_key="sk-secret-1234", cookies={"session": "c00kie-value"}) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "failed" and "HTTP 500" in r.msg and "***" in r.msg
    for text in (repr(r), caplog.text):
        assert "sk-secret-1234" not in text and "c00kie-value" not in text


# -- the server's types, per executor -----------------------------------------------------------------


@BOTH
def test_lossy_value_is_refused_before_submitting(cls, fake_comfy, wf):
    from comfykit_batch import ParameterError

    with cls(fake_comfy.url) as ex, pytest.raises(ParameterError, match="width"):
        ex.execute(wf, {"width": 3.5}, timeout=10)
    assert fake_comfy.submitted == []


@BOTH
def test_failure_to_learn_types_is_a_transient_connection_failure(cls, fake_comfy, wf):
    fake_comfy.script["GET /object_info"] = deque([(503, b"warming up")])
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
        assert r.status == "failed" and r.failure.kind == "connection" and r.failure.transient
        assert ex.execute(wf, {"width": 4}, timeout=10).status == "completed"
    assert len(fake_comfy.submitted) == 1


def test_types_are_kept_per_executor_not_in_the_shared_workflow(fake_comfy):
    from comfykit_batch import ParameterError
    from tests.fakes.fake_comfyui import FakeComfyUI

    other = FakeComfyUI().start()
    try:
        fake_comfy.classes["CheckpointLoader"] = {"ckpt_name": [["a.safetensors"]]}
        other.classes["CheckpointLoader"] = {"ckpt_name": [["b.safetensors"]]}
        wf = Workflow({"1": {"class_type": "CheckpointLoader", "inputs": {"ckpt_name": "a.safetensors"},
                             "_meta": {"title": "$model.ckpt_name"}}})
        with HttpExecutor(fake_comfy.url) as a, HttpExecutor(other.url) as b:
            a.prepare(wf)
            b.prepare(wf)  # must not narrow what a accepts
            assert a.execute(wf, {"model": "a.safetensors"}, timeout=10).status == "completed"
            with pytest.raises(ParameterError, match="a.safetensors"):
                b.execute(wf, {"model": "a.safetensors"}, timeout=10)
            assert a.types_for(wf)["model"].choices == ("a.safetensors",)
        assert [r for r in fake_comfy.requests if r == ("GET", "/object_info")] == [("GET", "/object_info")]
    finally:
        other.stop()


def test_http_first_look_is_at_the_expected_end_once_the_servers_pace_is_known(fake_comfy, wf):
    """After one prompt, the server's own timestamps say how long a prompt takes: the first look goes there.

    At a fixed 10 ms first look growing by a quarter, a 60 ms prompt costs about nine reads of
    ``/history``; looking at the expected end costs one or two (three allowed: a busy machine runs late).
    """
    fake_comfy.work_seconds = 0.06
    with HttpExecutor(fake_comfy.url) as ex:
        first = [ex.execute(wf, {"width": 4}, timeout=10), ex.execute(wf, {"width": 5}, timeout=10)]
        assert list(ex.pace.per_prompt.values()) >= [0.05]  # the first prompt teaches nothing (model loading)
        later = [ex.execute(wf, {"width": 5 + i}, timeout=10) for i in range(1, 6)]
    assert all(r.status == "completed" for r in first + later)
    assert min(_history_reads(fake_comfy, r.prompt_id) for r in first) >= 5  # nothing known yet: the growing schedule
    assert sum(_history_reads(fake_comfy, r.prompt_id) for r in later) <= 3 * len(later)


@BOTH
def test_outputs_come_from_the_shared_folder_and_never_through_view(cls, fake_comfy, wf, tmp_path):
    fake_comfy.output_dir = tmp_path / "server-output"
    fake_comfy.output_dir.mkdir()
    with cls(fake_comfy.url, server_output_dir=fake_comfy.output_dir) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
        (f,) = r.files
        saved = ex.download(f, tmp_path / "got.png")
    assert saved.path.read_bytes() == (fake_comfy.output_dir / f.subfolder / f.filename).read_bytes()
    wait_for(lambda: fake_comfy.views)  # the fake counts a file once it has written it, maybe after the client read it
    assert fake_comfy.requests.count(("GET", "/view")) == 1 == fake_comfy.views  # the folder's probe, then nothing


def test_the_shared_folders_check_tells_a_server_fault_from_a_wrong_folder(fake_comfy, tmp_path):
    from comfykit_batch.errors import ConfigError

    fake_comfy.output_dir = tmp_path / "server-output"
    fake_comfy.output_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fake_comfy.script["GET /view"] = deque([(503, b"busy")])
    with HttpExecutor(fake_comfy.url, server_output_dir=fake_comfy.output_dir) as ex:
        with pytest.raises(BackendError) as exc:
            ex.check()
        assert exc.value.transient and not isinstance(exc.value, ConfigError)  # may pass: not the folder's fault
        ex.check()  # and it did
    with HttpExecutor(fake_comfy.url, server_output_dir=elsewhere) as ex, pytest.raises(ConfigError, match="not the output folder"):
        ex.check()
    assert not list(elsewhere.iterdir()) and not list(fake_comfy.output_dir.iterdir())  # the probes are gone
