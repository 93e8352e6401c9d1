"""Outputs read from the server's own output folder (``server_output_dir``) on a real ComfyUI."""

from __future__ import annotations

import hashlib
import json

import pytest

from comfykit_batch.cli import main
from comfykit_batch.executors.comfyui_client import ComfyUIClient
from tests.real.test_batch_real import _example

pytestmark = pytest.mark.real

STREAM = ComfyUIClient.stream  # the real one, whatever a test puts in its place


def _with_shared(tmp_path, url: str, folder) -> object:
    m = _example(tmp_path, url)
    m.write_text(m.read_text().replace(f"    url: {url}\n", f"    url: {url}\n    server_output_dir: {folder}\n"))
    return m


@pytest.fixture
def streamed(monkeypatch) -> list[str]:
    """Every URL the client streams from a server (``/view`` downloads and the folder's probe), in order."""
    urls: list[str] = []

    def recording(self, url, chunk=1 << 20):
        urls.append(url)
        return STREAM(self, url, chunk)

    monkeypatch.setattr(ComfyUIClient, "stream", recording)
    return urls


def test_outputs_are_read_from_the_servers_folder_not_downloaded(tmp_path, real_comfy, capsys, streamed):
    m = _with_shared(tmp_path, real_comfy.url, real_comfy.output_dir)
    assert main([str(m), "-q", "--limit", "6"]) == 0
    assert "6 completed, 0 failed" in capsys.readouterr().out
    assert len(streamed) == 1 and "comfykit-probe-" in streamed[0]  # the folder's check; no output went through /view
    assert not list(real_comfy.output_dir.glob("comfykit-probe-*"))  # and its probe is gone
    jobs = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    assert len(jobs) == 6
    client = ComfyUIClient(real_comfy.url)
    for j in jobs:
        (f,) = j["files"]
        data = (tmp_path / "out" / f["path"]).read_bytes()
        assert f["size"] == len(data) > 0 and f["sha256"] == hashlib.sha256(data).hexdigest()
        served = b"".join(STREAM(client, client.view_url(f["source_name"], "comfykit_batch")))  # the workflow's prefix
        assert data == served, "the same bytes the server's /view sends"
    client.close()


@pytest.mark.parametrize("where", ["another folder", "a missing folder"])
def test_a_folder_that_is_not_the_servers_fails_before_the_first_job(where, tmp_path, real_comfy, capsys):
    folder = tmp_path / ("elsewhere" if where == "another folder" else "missing")
    if where == "another folder":
        folder.mkdir()
    m = _with_shared(tmp_path, real_comfy.url, folder)
    assert main([str(m), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.count(f"server_output_dir {folder}") == 1
    assert ("not the output folder of" if where == "another folder" else "cannot write a probe file there") in err
    assert not (tmp_path / "out" / "index.json").exists() or not json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    assert not list(folder.glob("comfykit-probe-*")) if folder.exists() else True


def test_the_managed_server_is_read_from_its_own_output_folder(tmp_path, capsys, streamed):
    """``url: local`` (the README's first command): the runner knows the managed server's folder and reads it."""
    m = _example(tmp_path, "local")
    assert main([str(m), "-q", "--limit", "2"]) == 0
    assert "2 completed, 0 failed" in capsys.readouterr().out
    assert len(streamed) == 1 and "comfykit-probe-" in streamed[0]
