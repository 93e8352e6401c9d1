"""The RunningHub executor against the fake RunningHub: every code path of the contract."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque

import pytest

from comfykit_batch import ComfyKit, ParameterError, Workflow
from comfykit_batch.defaults import Timings
from comfykit_batch.executors.runninghub import RunningHubExecutor
from comfykit_batch.sources import remote_workflow
from tests.fakes.fake_runninghub import GOOD_KEY, FakeRunningHub
from tests.helpers import png

WF_ID = "1904136902449209346"
#: retries paced in milliseconds, not the half second doubling of production
QUICK = Timings(retry_first=0.01, retry_max=0.05)
API_JSON = {
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dog"}, "_meta": {"title": "$prompt.text!"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20}, "_meta": {"title": "$seed, $steps"}},
    "10": {"class_type": "LoadImage", "inputs": {"image": "x.png"}, "_meta": {"title": "$image.image"}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "rh"}, "_meta": {"title": "$output.final"}},
}


@pytest.fixture
def rh():
    fake = FakeRunningHub()
    fake.workflows[WF_ID] = API_JSON
    fake.start()
    yield fake
    fake.stop()


def make(rh, **kw):
    kw.setdefault("poll_interval", 0.02)
    kw.setdefault("queue_backoff", 0.05)
    kw.setdefault("timings", QUICK)
    return RunningHubExecutor(rh.url, GOOD_KEY, **kw)


def creates(rh):
    return [b for p, b in rh.calls if p in ("/task/openapi/create", "/task/openapi/ai-app/run")]


def test_kit_end_to_end_by_workflow_id(rh, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNNINGHUB_API_KEY", GOOD_KEY)
    kit = ComfyKit(runninghub_url=rh.url)
    kit.runninghub.poll_interval = 0.02
    import asyncio

    result = asyncio.run(kit.execute(WF_ID, {"prompt": "a cat", "seed": 0}))
    assert result.status == "completed", result.msg
    assert isinstance(result.prompt_id, str) and int(result.prompt_id) > 2**53
    assert result.images_by_var == {"final": [f"{rh.url}/files/{result.prompt_id}/ComfyUI_00001_.png"]}
    assert result.cost == {"taskCostTime": 12.0, "consumeCoins": 3.0} and result.duration > 0
    (body,) = creates(rh)
    assert body["workflowId"] == WF_ID and "workflow" not in body
    assert sorted((n["nodeId"], n["fieldName"], n["fieldValue"]) for n in body["nodeInfoList"]) == [
        ("3", "seed", 0), ("6", "text", "a cat")]
    saved = kit.runninghub.download(result.files[0], tmp_path / "o.png")
    assert png.decode(saved.path.read_bytes())[:2] == (1, 1)


def test_required_parameter_checked_before_anything_is_created(rh):
    with make(rh) as ex, pytest.raises(ParameterError, match="missing required parameter .*prompt"):
        ex.execute(remote_workflow(WF_ID), {"steps": 4})
    assert creates(rh) == []


def test_local_workflow_file_is_sent_in_the_workflow_field(rh):
    wf = Workflow({"_source": "runninghub", "_workflow_id": WF_ID, **API_JSON})
    with make(rh) as ex:
        r = ex.execute(wf, {"prompt": "a fox", "steps": "8"})
    assert r.status == "completed", r.msg
    (body,) = creates(rh)
    sent = json.loads(body["workflow"])
    assert sent["6"]["inputs"]["text"] == "a fox" and sent["3"]["inputs"]["steps"] == 8


def test_ai_app_with_node_field_parameters(rh):
    with make(rh, instance_type="plus", webhook_url="https://hook.example/x") as ex:
        r = ex.execute(remote_workflow("1877265245566922753", webapp=True), {"52.prompt": "hello"})
    assert r.status == "completed", r.msg
    (body,) = creates(rh)
    assert body["webappId"] == "1877265245566922753" and body["instanceType"] == "plus"
    assert body["webhookUrl"] == "https://hook.example/x"
    assert body["nodeInfoList"] == [{"nodeId": "52", "fieldName": "prompt", "fieldValue": "hello"}]


def test_uploads_go_through_the_upload_route(rh, tmp_path):
    p = tmp_path / "in.png"
    p.write_bytes(png.encode(2, 2, (1, 2, 3)))
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x", "image": str(p)})
    assert r.status == "completed", r.msg
    ups = [b for path, b in rh.calls if path == "/task/openapi/upload"]
    assert len(ups) == 1 and ups[0]["fileType"] == "image" and ups[0]["apiKey"] == GOOD_KEY
    node = [n for n in creates(rh)[0]["nodeInfoList"] if n["nodeId"] == "10"][0]
    assert node["fieldValue"] == "api/in.png"


def test_upload_over_limit_fails_with_809(rh):
    rh.upload_limit = 10
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x", "image": b"\x89PNG\r\n\x1a\n" + b"0" * 100})
    assert r.status == "failed" and r.failure.code == 809 and "file too large" in r.msg
    assert creates(rh) == []


def test_failed_task_reports_the_real_reason(rh):
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "FAIL"})
    assert r.status == "failed"
    assert r.msg == "node 9 (KSampler) raised torch.OutOfMemoryError: CUDA out of memory"
    assert r.failure.node_id == "9" and "OOM" in r.failure.traceback and "success" not in r.msg
    assert r.prompt_id and not r.failure.transient


@pytest.mark.parametrize("code, meaning", [(802, "unauthorized"), (380, "workflow does not exist"),
                                           (433, "prompt validation failed"), (416, "wallet balance too low"),
                                           (803, "invalid node info")])
def test_final_codes_fail_at_once(rh, code, meaning):
    rh.code_failures.append(("/task/openapi/create", code))
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "failed" and r.failure.code == code and meaning in r.msg and not r.failure.transient
    assert len(creates(rh)) == 1


def test_bad_key_is_final_and_never_echoed(rh, caplog):
    caplog.set_level(logging.DEBUG)
    with RunningHubExecutor(rh.url, "sk-wrong-secret", poll_interval=0.02) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "failed" and r.failure.code == 802
    assert "sk-wrong-secret" not in repr(r) and "sk-wrong-secret" not in caplog.text and "sk-wrong-secret" not in repr(ex)


def test_key_never_in_results_or_logs_of_a_run(rh, caplog):
    caplog.set_level(logging.DEBUG)
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.ok and GOOD_KEY not in repr(r) and GOOD_KEY not in caplog.text


def test_queue_full_backs_off_instead_of_failing(rh):
    rh.code_failures.extend([("/task/openapi/create", 421), ("/task/openapi/create", 421)])
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "completed" and len(creates(rh)) == 3 and len(rh.tasks) == 1


def test_per_key_concurrency_is_honoured(rh):
    rh.run_seconds = 0.15
    results = []
    with make(rh, concurrency=1) as ex:
        threads = [threading.Thread(target=lambda: results.append(ex.execute(remote_workflow(WF_ID), {"prompt": "x"})))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [r.status for r in results] == ["completed"] * 3
    assert len(creates(rh)) == 3, "no 421 was ever provoked: the executor held tasks back itself"


def test_lost_create_answer_never_double_submits(rh):
    rh.drop_create_answer = 1
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "failed" and r.failure.kind == "uncertain" and not r.failure.transient
    assert len(creates(rh)) == 1 and len(rh.tasks) == 1


def test_5xx_on_create_is_retried_before_a_task_exists(rh):
    rh.http_failures.extend([("/task/openapi/create", 503), ("/task/openapi/create", 429)])
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "completed" and len(creates(rh)) == 3 and len(rh.tasks) == 1


def test_connection_refused_is_retried_then_fails_transient():
    with RunningHubExecutor("http://127.0.0.1:9", GOOD_KEY, retry_count=2, poll_interval=0.01, timings=QUICK) as ex:
        r = ex.execute(Workflow({"_source": "runninghub", "_workflow_id": "1", **API_JSON}), {"prompt": "x"})
    assert r.status == "failed" and r.failure.transient and "refused" in r.msg


def test_status_polls_tolerate_a_few_failures(rh):
    rh.http_failures.extend([("/task/openapi/status", 502), ("/task/openapi/status", 500)])
    rh.empty_outputs_first = 1
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "completed"


def test_timeout_cancels_the_task_and_keeps_its_id(rh):
    rh.run_seconds = 30
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"}, timeout=0.3)
    assert r.status == "failed" and r.failure.kind == "timeout" and r.prompt_id in r.msg
    cancels = [b for p, b in rh.calls if p == "/task/openapi/cancel"]
    assert [c["taskId"] for c in cancels] == [r.prompt_id] and rh.tasks[r.prompt_id]["cancelled"]


def test_cancel_event_cancels_the_task(rh):
    rh.run_seconds = 30
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"}, cancel=stop)
    assert r.failure.kind == "cancelled" and rh.tasks[r.prompt_id]["cancelled"]


def test_default_timeout_is_300_seconds():
    assert ComfyKit(runninghub_api_key="k").runninghub.timeout == 300


def test_batch_on_a_runninghub_backend_keeps_the_key_out_of_every_file(rh, tmp_path, monkeypatch):
    from comfykit_batch.cli import main
    from tests.helpers.manifests import write_manifest

    monkeypatch.setenv("RH_KEY", GOOD_KEY)
    m = write_manifest(tmp_path, [{"name": "rh", "type": "runninghub", "url": rh.url, "api_key": "${RH_KEY}",
                                   "concurrency": 1, "poll_interval": 0.02}], workflow=WF_ID, sweep={"grid": {"prompt": ["a", "b", "c"]}},
                       workflows=[{"name": "w", "source": WF_ID}])
    assert main([str(m), "-q"]) == 0
    jobs = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    assert len(jobs) == 3 and all(j["status"] == "completed" and j["cost"]["consumeCoins"] == 3.0 for j in jobs)
    assert all(j["files"][0]["var"] == "final" for j in jobs)
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert GOOD_KEY.encode() not in f.read_bytes(), f


def test_list_params_of_a_workflow_id_fetches_its_json(rh):
    kit = ComfyKit(runninghub_url=rh.url, runninghub_api_key=GOOD_KEY)
    names = {p["name"]: p for p in kit.list_params(WF_ID)}
    assert set(names) == {"prompt", "seed", "steps", "image"} and names["prompt"]["required"]


# -- the error contract, deadlines and secrets -------------------------------------------------------


def test_stalled_status_request_ends_at_the_calls_limit_and_cancels(rh):
    rh.run_seconds = 30
    rh.delay["/task/openapi/status"] = 60  # every status request hangs (until the fake stops)
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"}, timeout=2)
        default_read = ex.request_timeout[1]
    assert r.status == "failed" and r.failure.kind == "timeout" and r.failure.transient
    assert r.duration < default_read  # the stalled read was cut at the deadline, not at its own 60 s
    cancels = [b["taskId"] for p, b in rh.calls if p == "/task/openapi/cancel"]
    assert cancels == [r.prompt_id] and rh.tasks[r.prompt_id]["cancelled"]


def test_no_timeout_means_the_executors_own(rh):
    rh.run_seconds = 30
    with make(rh, timeout=0.5) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"}, timeout=None)
    assert r.failure.kind == "timeout" and rh.tasks[r.prompt_id]["cancelled"]


def test_download_503_is_a_transient_backend_error(rh, tmp_path):
    from comfykit_batch.errors import BackendError

    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
        rh.file_failures.append(503)
        with pytest.raises(BackendError, match="HTTP 503") as err:
            ex.download(r.files[0], tmp_path / "o.png")
        assert err.value.transient and not list(tmp_path.iterdir())
        assert ex.download(r.files[0], tmp_path / "o.png").size > 0  # and it passes
    downloads = [h for p, h in rh.headers if p.startswith("/files/")]
    assert downloads and all(GOOD_KEY not in json.dumps(h) for h in downloads)


def test_unreachable_runninghub_is_a_failed_result_and_a_check_error():
    from comfykit_batch.errors import BackendError

    with RunningHubExecutor("http://127.0.0.1:9", GOOD_KEY, retry_count=0) as ex:
        with pytest.raises(BackendError, match=r"127\.0\.0\.1:9\? set runninghub_url") as err:
            ex.check()
        assert err.value.transient
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"}, timeout=5)
        with pytest.raises(BackendError):
            ex.prepare(remote_workflow(WF_ID))
    assert r.status == "failed" and r.failure.kind == "connection" and r.failure.transient


def test_check_with_a_bad_key_is_an_auth_error(rh):
    from comfykit_batch.errors import AuthError

    with make(rh) as ex:
        ex.check()
    with RunningHubExecutor(rh.url, "sk-wrong-secret") as ex, pytest.raises(AuthError, match="802") as err:
        ex.check()
    assert "sk-wrong-secret" not in str(err.value)
    assert [p for p, _ in rh.calls] == ["/uc/openapi/accountStatus"] * 2


def test_invalid_json_from_status_is_survived(rh):
    rh.script["/task/openapi/status"] = deque([b"<html>gateway</html>", b'{"code": 0, "da'])
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "completed", r.msg


def test_server_text_echoing_the_key_is_scrubbed(rh, caplog):
    caplog.set_level(logging.DEBUG)
    echo = json.dumps({"code": 433, "msg": f"validation failed for body apiKey={GOOD_KEY}", "data": None}).encode()
    rh.script["/task/openapi/create"] = deque([echo])
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "failed" and r.failure.code == 433 and "apiKey=***" in r.msg
    assert GOOD_KEY not in repr(r) and GOOD_KEY not in caplog.text


def test_declared_output_missing_from_runninghub_outputs_fails(rh):
    rh.outputs = [{"fileUrl": f"{rh.url}/files/x/other.png", "fileType": "png", "nodeId": "77"}]
    with make(rh) as ex:
        r = ex.execute(remote_workflow(WF_ID), {"prompt": "x"})
    assert r.status == "failed" and r.failure.kind == "missing_output"
    assert "final (node 9, SaveImage)" in r.msg and r.prompt_id
