"""End-to-end: both executors against a real ComfyUI server."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from comfykit_batch import ComfyKit, MissingNodesError, ParameterError, Workflow
from comfykit_batch.executors.comfyui_http import HttpExecutor
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor
from tests.helpers import png
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.real

EXECUTORS = [HttpExecutor, WebSocketExecutor]


@pytest.fixture(params=EXECUTORS, ids=["http", "websocket"])
def executor(request, real_comfy):
    ex = request.param(real_comfy.url)
    yield ex
    ex.close()


def _near(got, want, tol=1):
    """ComfyUI works in float32: a channel may land one step off after a round trip."""
    return all(abs(a - b) <= tol for a, b in zip(got, want, strict=False)) and len(got) == len(want)


def _pixels(executor, url_file, tmp_path):
    saved = executor.download(url_file, tmp_path / url_file.filename)
    return png.decode(saved.path.read_bytes()), saved


def test_parameters_reach_the_pixels(executor, workflows, tmp_path):
    wf = Workflow.from_file(workflows / "invert.json")
    r = executor.execute(wf, {"width": 20, "height": 10, "color": 0x102030}, timeout=60)
    assert r.status == "completed", r.msg
    assert list(r.images_by_var) == ["inverted"] and len(r.images) == 1
    (w, h, rows), saved = _pixels(executor, r.files[0], tmp_path)
    assert (w, h) == (20, 10)
    assert _near(rows[5][5][:3], (0xFF - 0x10, 0xFF - 0x20, 0xFF - 0x30))
    assert saved.size == len(saved.path.read_bytes()) and len(saved.sha256) == 64


@pytest.mark.parametrize("form", ["path", "bytes", "data_uri"])
def test_uploads_through_load_image(executor, workflows, tmp_path, form):
    import base64

    data = png.encode(6, 4, (10, 200, 30))
    if form == "path":
        p = tmp_path / "in put.png"
        p.write_bytes(data)
        value = str(p)
    elif form == "bytes":
        value = data
    else:
        value = "data:image/png;base64," + base64.b64encode(data).decode()
    wf = Workflow.from_file(workflows / "upload_invert.json")
    r = executor.execute(wf, {"image": value}, timeout=60)
    assert r.status == "completed", r.msg
    (w, h, rows), _ = _pixels(executor, r.files[0], tmp_path)
    assert (w, h) == (6, 4) and _near(rows[0][0][:3], (245, 55, 225))
    # The uploaded name now works as a plain server-side file name, with no upload.
    r2 = executor.execute(wf, {"image": r.params["image"]}, timeout=60)
    assert r2.status == "completed", r2.msg


def test_cached_identical_prompt_still_returns_outputs(executor, workflows):
    wf = Workflow.from_file(workflows / "invert.json")
    first = executor.execute(wf, {"width": 33}, timeout=60)
    again = executor.execute(wf, {"width": 33}, timeout=60)
    assert first.status == again.status == "completed"
    assert again.images == first.images and again.images  # served from cache: the old file, still reported


@pytest.mark.parametrize("name, params", [("invert.json", {"width": 34}), ("text.json", {"a": "x", "b": "y"}),
                                          ("preview_and_save.json", {"color": 0x0000FF})])
def test_websocket_outputs_from_events_are_the_history_entrys(real_comfy, workflows, name, params, monkeypatch):
    """The socket's executed events stand for /history's outputs: the same, for a fresh and a fully cached prompt."""
    wf = Workflow.from_file(workflows / name)
    with WebSocketExecutor(real_comfy.url) as ex:
        ex.prepare(wf)
        read: list[str] = []
        monkeypatch.setattr(ex.client, "history", lambda pid, **kw: read.append(pid))
        for _ in range(2):  # the second is served from the server's cache
            r = ex.execute(wf, params, timeout=60)
            assert read == []  # the events told it all
            assert r.status == "completed", r.msg
            url = f"{real_comfy.url}/history/{r.prompt_id}"
            wait_for(lambda url=url: requests.get(url, timeout=10).json())  # written just after the success event
            entry = requests.get(url, timeout=10).json()[r.prompt_id]
            assert r.outputs == entry["outputs"] and r.outputs


def test_text_outputs(executor, workflows):
    r = executor.execute(Workflow.from_file(workflows / "text.json"), {"a": "good", "b": "day"}, timeout=60)
    assert r.status == "completed", r.msg
    assert r.texts_by_var == {"joined": ["good day"]} and r.texts == ["good day"]


def test_temp_previews_kept_apart_from_saved_images(executor, workflows):
    r = executor.execute(Workflow.from_file(workflows / "preview_and_save.json"), {"color": 0x00FF00}, timeout=60)
    assert r.status == "completed", r.msg
    assert list(r.images_by_var) == ["saved"] and len(r.images) == 1
    assert list(r.previews_by_var) == ["preview"] and "type=temp" in r.previews[0]


def test_unicode_and_spaces_in_output_names_download(executor, workflows, tmp_path):
    wf = Workflow.from_file(workflows / "preview_and_save.json")
    r = executor.execute(wf, {"prefix": "comfykit/a b&c ü"}, timeout=60)
    assert r.status == "completed", r.msg
    saved = [f for f in r.files if f.var == "saved"][0]
    assert saved.filename.startswith("a b&c ü")
    (w, h, _), _ = _pixels(executor, saved, tmp_path)
    assert (w, h) == (16, 16)


def test_node_error_reports_node_class_and_exception(executor, workflows):
    r = executor.execute(Workflow.from_file(workflows / "raise.json"), {"message": "bad input 42"}, timeout=60)
    assert r.status == "failed"
    f = r.failure
    assert (f.kind, f.node_id, f.node_type, f.exception_type) == ("execution", "1", "ComfykitRaise", "ValueError")
    assert r.msg == "node 1 (ComfykitRaise) raised ValueError: bad input 42"
    assert "Traceback" in (f.traceback or "") or "raise ValueError" in (f.traceback or "")
    assert not f.transient


def test_out_of_range_value_is_refused_before_submitting(executor, workflows, real_comfy):
    r_before = requests.get(f"{real_comfy.url}/history", timeout=10).json()
    with pytest.raises(ParameterError, match="'width'.*-5"):
        executor.execute(Workflow.from_file(workflows / "invert.json"), {"width": -5}, timeout=60)
    assert requests.get(f"{real_comfy.url}/history", timeout=10).json().keys() == r_before.keys()


def test_validation_error_400_is_readable(executor):
    """A prompt the server refuses as a whole (a required input missing): one readable line."""
    wf = Workflow({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    })
    r = executor.execute(wf, {}, timeout=60)
    assert r.status == "failed" and r.failure.kind == "rejected" and not r.failure.transient
    assert "node 1 (EmptyImage) input 'height'" in r.msg
    assert r.msg.count("prompt rejected") == 1


def test_missing_node_classes_are_named_before_submitting(executor, workflows, real_comfy):
    wf = Workflow.from_file(workflows / "missing_node.json")
    with pytest.raises(MissingNodesError, match="SomeCustomNodeNobodyInstalled \\(node 1\\)"):
        executor.prepare(wf)


def test_types_come_from_the_server_and_stay_out_of_the_shared_workflow(executor, workflows):
    wf = Workflow.from_file(workflows / "invert.json")
    executor.prepare(wf)
    types = executor.types_for(wf)
    assert types["width"].type == "int" and types["width"].min == 1
    assert wf.parameters["width"].type == "number"  # the workflow object is shared by backends: untouched
    assert executor.types_for(wf) is types  # learned once


def test_timeout_interrupts_the_remote_prompt(executor, workflows, real_comfy):
    wf = Workflow.from_file(workflows / "slow.json")
    r = executor.execute(wf, {"steps": 400, "step_seconds": 0.05, "label": f"t-{time.time()}"}, timeout=1.0)
    assert r.status == "failed" and r.failure.kind == "timeout" and "timeout" in r.msg
    # the server stopped working on it: the queue drains well before the 20 s the node would take
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        q = requests.get(real_comfy.url + "/queue", timeout=5).json()
        if not q["queue_running"] and not q["queue_pending"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the timed-out prompt still runs on the server")
    hist = requests.get(f"{real_comfy.url}/history/{r.prompt_id}", timeout=5).json()[r.prompt_id]
    assert any(m[0] == "execution_interrupted" for m in hist["status"]["messages"])


def test_cancel_event_interrupts(executor, workflows):
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    r = executor.execute(Workflow.from_file(workflows / "slow.json"),
                         {"steps": 400, "step_seconds": 0.05, "label": f"c-{time.time()}"}, timeout=60, cancel=cancel)
    assert r.status == "failed" and r.failure.kind == "cancelled"


def test_websocket_progress_events(real_comfy, workflows):
    events = []
    with WebSocketExecutor(real_comfy.url) as ex:
        r = ex.execute(Workflow.from_file(workflows / "slow.json"),
                       {"steps": 6, "step_seconds": 0.05, "label": f"p-{time.time()}"}, timeout=60, on_progress=events.append)
    assert r.status == "completed", r.msg
    assert r.texts_by_var["slow"][0].endswith(":6")
    values = [(e.node, e.value, e.max) for e in events]
    assert values[-1] == ("1", 6, 6) and len(values) >= 3


def test_kit_async_api_end_to_end(real_comfy, workflows):
    import asyncio

    async def main():
        async with ComfyKit(comfyui_url=real_comfy.url, executor_type="websocket") as kit:
            return await asyncio.gather(*[kit.execute(str(workflows / "invert.json"), {"width": 8 + i}) for i in range(4)])

    results = asyncio.run(main())
    assert [r.status for r in results] == ["completed"] * 4
    assert len({r.images[0] for r in results}) == 4


def test_kit_list_params(real_comfy, workflows):
    params = {p["name"]: p for p in ComfyKit(real_comfy.url).list_params(str(workflows / "invert.json"))}
    assert params["width"]["required"] and params["height"]["default"] == 48 and params["width"]["nodes"] == ["1.width"]


def test_partly_invalid_prompt_is_a_validation_failure_and_is_stopped(executor, real_comfy):
    """ComfyUI answers 200 with node_errors and queues only the valid branch: that must not read as completed.

    A slow prompt runs first, so the valid branch is still pending when the executor removes it.
    """
    base = real_comfy.url
    blocker = {"1": {"class_type": "ComfykitSlowProgress", "inputs": {"steps": 100, "step_seconds": 0.1, "label": "b"}}}
    blocker_id = requests.post(f"{base}/prompt", json={"prompt": blocker}, timeout=10).json()["prompt_id"]
    tick = threading.Event()
    while not requests.get(f"{base}/queue", timeout=10).json()["queue_running"]:
        tick.wait(0.02)
    wf = Workflow({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "good"},
              "_meta": {"title": "$output.good"}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": -5, "height": 8, "batch_size": 1, "color": 0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "bad"},
              "_meta": {"title": "$output.bad"}},
    })
    try:
        r = executor.execute(wf, {}, timeout=60)
        queue = requests.get(f"{base}/queue", timeout=10).json()
    finally:  # leave the server idle: later tests count its history
        requests.post(f"{base}/interrupt", json={"prompt_id": blocker_id}, timeout=10)
        while blocker_id not in requests.get(f"{base}/history/{blocker_id}", timeout=10).json():
            tick.wait(0.02)
    assert r.status == "failed" and r.failure.kind == "validation" and not r.failure.transient
    assert "node 3 (EmptyImage) input 'width'" in r.msg and "smaller than min" in r.msg
    assert r.prompt_id not in [item[1] for item in queue["queue_pending"] + queue["queue_running"]]
    assert requests.get(f"{base}/history/{r.prompt_id}", timeout=10).json() == {}  # never ran


def test_check_on_the_real_server_and_on_a_dead_port(executor):
    from comfykit_batch.errors import BackendError

    executor.check()
    with HttpExecutor("http://127.0.0.1:9") as dead, pytest.raises(BackendError, match="is ComfyUI running at"):
        dead.check()
