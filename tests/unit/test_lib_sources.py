"""``sources.resolve_workflow``: every workflow source through one function, and downloads that keep their secrets."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from comfykit_batch.errors import WorkflowError
from comfykit_batch.sources import is_path_source, remote_workflow, resolve_workflow, runs_on_runninghub
from comfykit_batch.workflow import Workflow

NODES = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}, "_meta": {"title": "$width"}}}


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        status, body = self.routes.get(self.path.split("?")[0], (404, b"not here"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web():
    _Handler.routes = {"/wf.json": (200, json.dumps(NODES).encode()), "/broken.json": (200, b"{nope"),
                       "/boom.json": (503, b"down")}
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_dicts_workflows_and_paths(tmp_path: Path):
    wf = Workflow(NODES)
    assert resolve_workflow(wf) is wf
    assert set(resolve_workflow(NODES).parameters) == {"width"}
    p = tmp_path / "wf.json"
    p.write_text(json.dumps(NODES))
    for source in (p, str(p)):
        got = resolve_workflow(source)
        assert got.source == str(p) and not runs_on_runninghub(got)


def test_runninghub_ids_apps_and_marked_files(tmp_path: Path):
    wf = resolve_workflow("1877265245566922753")
    assert runs_on_runninghub(wf) and wf.meta["_workflow_id"] == "1877265245566922753" and not wf.nodes
    app = resolve_workflow("webapp:42")
    assert runs_on_runninghub(app) and app.meta == {"_source": "runninghub", "_webapp_id": "42"}
    p = tmp_path / "rh.json"
    p.write_text(json.dumps({"_source": "RunningHub", "_workflow_id": "7", **NODES}))
    marked = resolve_workflow(p)
    assert runs_on_runninghub(marked) and set(marked.parameters) == {"width"}
    assert remote_workflow("7").meta == {"_source": "runninghub", "_workflow_id": "7"}


def test_bad_sources_fail_in_one_line():
    with pytest.raises(WorkflowError, match="webapp:<digits>"):
        resolve_workflow("webapp:abc")
    with pytest.raises(WorkflowError, match="not int"):
        resolve_workflow(12)  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="no such workflow file"):
        resolve_workflow("missing/wf.json")


def test_which_strings_are_paths():
    assert is_path_source("workflows/a.json") and is_path_source("/abs/a.json")
    assert not any(map(is_path_source, ("123", "webapp:5", "https://h/a.json", "http://h/a.json")))


def test_url_is_downloaded_and_its_query_kept_out_of_the_source(web: str):
    wf = resolve_workflow(f"{web}/wf.json?sig=SECRET")
    assert set(wf.parameters) == {"width"}
    assert "SECRET" not in wf.source and wf.source.startswith(f"{web}/wf.json")
    assert _Handler.seen == ["/wf.json?sig=SECRET"], "the download itself uses the signed URL"


@pytest.mark.parametrize("path, reason", [("/gone.json", "HTTP 404"), ("/boom.json", "HTTP 503")])
def test_http_error_names_status_and_host_never_the_query(web: str, path: str, reason: str, caplog):
    caplog.set_level(logging.DEBUG)
    host = web.removeprefix("http://")
    with pytest.raises(WorkflowError) as err:
        resolve_workflow(f"{web}{path}?token=SECRET")
    assert str(err.value) == f"could not download the workflow from {host}: {reason}"
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("comfykit_batch")]
    assert not any("SECRET" in m for m in ours)


def test_unreachable_host_and_bad_json_keep_the_query_out(web: str):
    with pytest.raises(WorkflowError, match="could not connect") as err:
        resolve_workflow("http://127.0.0.1:9/wf.json?token=SECRET")  # port 9 (discard): nothing listens
    assert "SECRET" not in str(err.value)
    with pytest.raises(WorkflowError, match="not valid JSON") as err:
        resolve_workflow(f"{web}/broken.json?token=SECRET")
    assert "SECRET" not in str(err.value)


def test_a_workflow_file_is_parsed_once_while_it_stays_the_same(tmp_path, monkeypatch):
    import os

    from comfykit_batch import sources

    path = tmp_path / "flow.json"
    path.write_text(json.dumps({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}, "_meta": {"title": "$width"}}}))
    parsed = []
    real = Workflow.from_file.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(Workflow, "from_file", classmethod(lambda cls, p: parsed.append(p) or real(cls, p)))
    first = resolve_workflow(str(path))
    assert resolve_workflow(str(path)) is first and resolve_workflow(path) is first and len(parsed) == 1
    path.write_text(json.dumps({"1": {"class_type": "EmptyImage", "inputs": {"height": 9}, "_meta": {"title": "$height"}}}))
    os.utime(path, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    changed = resolve_workflow(str(path))
    assert changed is not first and list(changed.parameters) == ["height"] and len(parsed) == 2
    for i in range(sources.FILE_CACHE_SIZE + 1):  # the cache stays bounded
        other = tmp_path / f"f{i}.json"
        other.write_text(path.read_text())
        resolve_workflow(str(other))
    assert len(sources._files) == sources.FILE_CACHE_SIZE


def test_a_runninghub_workflow_file_is_never_shared(tmp_path):
    path = tmp_path / "rh.json"
    path.write_text(json.dumps({"_source": "RunningHub", "_workflow_id": "7", **NODES}))
    assert resolve_workflow(str(path)) is not resolve_workflow(str(path))
