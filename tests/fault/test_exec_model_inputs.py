"""``model_inputs`` on both ComfyUI executors: what a server's ``/models`` adds to the workflow's own model inputs.

A custom loader (a class no list of core loaders knows, values without a model file's extension) is found
only because the server lists the folder its combo's choices come from. Every failure is the package's own
``BackendError``/``AuthError``, without the credentials sent; the folders are read once per executor.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from comfykit_batch import Workflow
from comfykit_batch.errors import AuthError, BackendError
from comfykit_batch.executors.comfyui_base import ComfyUIExecutor
from comfykit_batch.executors.comfyui_http import HttpExecutor
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor
from comfykit_batch.models import CORE_LOADERS, static_inputs
from tests.fakes.fake_comfyui import FakeComfyUI

SECRET = "sk-model-folders-SECRET-0042"
STYLES = ["noir", "pastel", "ukiyoe"]  # a custom folder's files: no model extension
FILES = {"checkpoints": ["sd15.safetensors", "sdxl.safetensors"], "style_packs": STYLES, "vae": ["ae.safetensors"]}

NODES: dict[str, Any] = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}, "_meta": {"title": "$ckpt.ckpt_name"}},
    "2": {"class_type": "StylePackLoader", "inputs": {"pack": "noir", "mode": "fast"}, "_meta": {"title": "$style.pack"}},
    "3": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "m"}, "_meta": {"title": "$output.image"}},
}
CUSTOM = ("2", "pack")
EXECUTORS = [HttpExecutor, WebSocketExecutor]


def serve(model_files: dict[str, list[str]] | None) -> FakeComfyUI:
    fake = FakeComfyUI(model_files=model_files)
    fake.classes["StylePackLoader"] = {"pack": [[*STYLES, "none"]], "mode": [["fast", "slow"]]}
    return fake.start()


@pytest.fixture
def fake() -> Iterator[FakeComfyUI]:
    server = serve(FILES)
    yield server
    server.stop()


@pytest.fixture(params=EXECUTORS, ids=["http", "websocket"])
def make(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Builds executors of one transport, all closed at the end."""
    made: list[ComfyUIExecutor] = []

    def build(url: str, **kw: Any) -> ComfyUIExecutor:
        made.append(request.param(url, **kw))
        return made[-1]

    yield build
    for ex in made:
        ex.close()


def model_requests(fake: FakeComfyUI) -> list[str]:
    return [path for method, path in fake.requests if method == "GET" and path.startswith("/models")]


def test_the_custom_loader_is_not_a_core_one_and_names_no_file() -> None:
    """The premise: nothing in the workflow alone says that the style pack is a model."""
    assert "StylePackLoader" not in CORE_LOADERS
    assert static_inputs(NODES) == {("1", "ckpt_name")}


def test_a_custom_loaders_input_is_found_because_the_server_lists_its_folder(fake: FakeComfyUI, make: Any) -> None:
    assert make(fake.url).model_inputs(Workflow(NODES)) == {("1", "ckpt_name"), CUSTOM}


def test_without_that_folder_the_custom_loader_is_not_a_model(make: Any) -> None:
    fake = serve({k: v for k, v in FILES.items() if k != "style_packs"})
    try:
        assert make(fake.url).model_inputs(Workflow(NODES)) == {("1", "ckpt_name")}
    finally:
        fake.stop()


def test_a_server_without_models_gives_the_workflows_own_inputs(make: Any) -> None:
    fake = serve(None)
    try:
        ex = make(fake.url)
        assert ex.model_inputs(Workflow(NODES)) == static_inputs(NODES)
        assert ex.model_inputs(Workflow(NODES)) == static_inputs(NODES)
        assert model_requests(fake) == ["/models"], "a 404 is an answer: it is not asked again"
        assert ("GET", "/object_info") not in fake.requests, "no folders: the server's types are not needed"
    finally:
        fake.stop()


@pytest.mark.parametrize(("answers", "transient"), [
    ([(500, f"internal error; Authorization: Bearer {SECRET}".encode())], True),
    ([(200, b"<html>not json</html>")], False),
    ([(200, {"checkpoints": []})], False),
    ([(200, ["checkpoints", 3])], False),
    (["truncate"], True),
    ([(200, ["checkpoints", "style_packs"]), (503, b"folder busy")], True),
    ([(200, ["style_packs"]), (200, [None])], False),
], ids=["500", "garbage", "object", "not-names", "dropped", "folder-503", "folder-garbage"])
def test_a_bad_models_answer_is_a_backend_error(fake: FakeComfyUI, make: Any, answers: list[Any], transient: bool) -> None:
    fake.script["GET /models"] = deque(answers)
    ex = make(fake.url, api_key=SECRET)
    with pytest.raises(BackendError) as caught:
        ex.model_inputs(Workflow(NODES))
    assert type(caught.value) is BackendError and caught.value.transient is transient
    assert SECRET not in str(caught.value) and fake.url in str(caught.value)
    assert not fake.script["GET /models"], "every scripted answer was asked for"


def test_a_refused_models_listing_is_an_auth_error(fake: FakeComfyUI, make: Any) -> None:
    fake.script["GET /models"] = deque([(401, b"")])
    with pytest.raises(AuthError):
        make(fake.url, api_key=SECRET).model_inputs(Workflow(NODES))


def test_a_failed_read_is_asked_again_and_then_kept(fake: FakeComfyUI, make: Any) -> None:
    fake.script["GET /models"] = deque([(500, b"warming up")])
    ex = make(fake.url)
    with pytest.raises(BackendError):
        ex.model_inputs(Workflow(NODES))
    assert CUSTOM in ex.model_inputs(Workflow(NODES))
    assert CUSTOM in ex.model_inputs(Workflow({**NODES, "5": {"class_type": "PreviewAny", "inputs": {"source": "x"}}}))
    assert model_requests(fake).count("/models") == 2


def test_folders_are_read_once_per_executor_whatever_the_threads_and_workflows(fake: FakeComfyUI, make: Any) -> None:
    ex = make(fake.url)
    workflows = [Workflow({**NODES, "9": {"class_type": "PreviewAny", "inputs": {"source": str(i)}}}) for i in range(4)]
    start = threading.Barrier(len(workflows) * 2)
    found: list[frozenset[tuple[str, str]]] = []

    def ask(wf: Workflow) -> None:
        start.wait(timeout=10)
        found.append(ex.model_inputs(wf))

    threads = [threading.Thread(target=ask, args=(wf,)) for wf in workflows * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads) and len(found) == len(threads)
    assert all(CUSTOM in f for f in found)
    assert sorted(model_requests(fake)) == sorted(["/models", *(f"/models/{f}" for f in FILES)])

    other = make(fake.url)  # another executor learns for itself (it may face a restarted server)
    assert CUSTOM in other.model_inputs(workflows[0])
    assert model_requests(fake).count("/models") == 2
