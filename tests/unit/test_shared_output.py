"""``server_output_dir``: the server's output folder read directly, only where the server itself would serve from."""

from __future__ import annotations

import io
import os
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest

from comfykit_batch.batch.run import connect
from comfykit_batch.batch.spec.manifest import ManifestError, load_manifest
from comfykit_batch.errors import BackendError, ConfigError
from comfykit_batch.executors.factory import create_executor
from comfykit_batch.executors.shared_output import SharedOutput
from comfykit_batch.result import OutputFile


def out(name: str, sub: str = "", kind: str = "output") -> OutputFile:
    return OutputFile(url="", filename=name, kind="image", var="v", node_id="9", subfolder=sub, type=kind)


def serving(folder: Path):
    """A stand-in for the server's /view of its output folder: what is in ``folder``."""
    def served(name: str) -> bytes | None:
        p = folder / name
        return p.read_bytes() if p.is_file() else None
    return served


@pytest.mark.parametrize("name, sub, kind", [
    ("../secret.txt", "", "output"), ("/etc/passwd", "", "output"), ("a.png", "../..", "output"),
    ("a.png", "/tmp", "output"), ("", "", "output"), (".", "", "output"), ("a.png", "", "temp"), ("a.png", "", "input"),
])
def test_names_the_server_would_not_serve_from_its_output_folder_go_through_view(tmp_path, name, sub, kind):
    shared = SharedOutput(tmp_path / "srv", "http://x")
    assert shared.path_of(out(name, sub, kind)) is None
    assert shared.open(out(name, sub, kind), serving(tmp_path / "srv")) is None


def test_a_plain_name_is_read_from_the_folder_after_the_folder_is_checked(tmp_path):
    folder = tmp_path / "srv"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.png").write_bytes(b"x" * 3_000_000)
    asked: list[str] = []

    def served(name: str) -> bytes | None:
        asked.append(name)
        return serving(folder)(name)

    shared = SharedOutput(folder, "http://x")
    chunks = shared.open(out("a.png", "sub"), served)
    assert chunks is not None and b"".join(chunks) == b"x" * 3_000_000
    assert shared.open(out("a.png", "sub"), served) is not None and len(asked) == 1  # checked once
    assert os.listdir(folder) == ["sub"]  # the probe is gone
    assert shared.open(out("gone.png", "sub"), served) is None  # not there: /view decides
    assert shared.open(out("a\x00.png", "sub"), served) is None  # no file has such a name: /view decides


def test_a_folder_the_server_does_not_serve_is_refused(tmp_path):
    (tmp_path / "srv").mkdir()
    shared = SharedOutput(tmp_path / "srv", "http://x")
    with pytest.raises(ConfigError, match="not the output folder of http://x"):
        shared.check(lambda name: None)
    with pytest.raises(ConfigError, match="cannot write a probe file there"):
        SharedOutput(tmp_path / "missing", "http://x").check(serving(tmp_path / "missing"))
    assert os.listdir(tmp_path / "srv") == []


def test_a_read_error_is_the_backends_not_the_output_disks_and_the_next_try_goes_through_view(tmp_path):
    """An OSError would stop the batch as the output disk's failure; a failing read there is the backend's."""

    class Broken(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            raise OSError(5, "Input/output error")

    folder = tmp_path / "srv"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png")
    shared = SharedOutput(folder, "http://x")
    with pytest.raises(BackendError, match="reading a.png from its output folder: Input/output error") as exc:
        next(shared._chunks(Broken(), str(folder / "a.png"), "a.png"))
    assert exc.value.transient
    assert shared.open(out("a.png"), serving(folder)) is None  # the retry is the server's /view


def test_links_and_special_files_in_the_folder_are_not_read_here(tmp_path):
    """A link could point this machine's reader at its own files (which the server's /view never sees); a pipe blocks."""
    folder, secret = tmp_path / "srv", tmp_path / "secret"
    folder.mkdir()
    secret.mkdir()
    (secret / "key").write_bytes(b"secret")
    (folder / "link.png").symlink_to(secret / "key")
    (folder / "sub").symlink_to(secret)
    (folder / "inner.png").write_bytes(b"png")
    (folder / "alias.png").symlink_to(folder / "inner.png")
    os.mkfifo(folder / "pipe.png")
    shared = SharedOutput(folder, "http://x")
    for name, sub in (("link.png", ""), ("key", "sub"), ("alias.png", ""), ("pipe.png", "")):
        assert shared.path_of(out(name, sub)) is not None  # by name, inside: only the file itself tells
        assert shared.open(out(name, sub), serving(folder)) is None, name
    chunks = shared.open(out("inner.png"), serving(folder))
    assert chunks is not None and b"".join(chunks) == b"png"


def test_a_folder_reached_through_a_link_is_read(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"png")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    chunks = SharedOutput(tmp_path / "alias", "http://x").open(out("a.png"), serving(tmp_path / "alias"))
    assert chunks is not None and b"".join(chunks) == b"png"


def test_only_comfyui_backends_take_the_folder(tmp_path):
    with pytest.raises(ConfigError, match="server_output_dir: a ComfyUI option"):
        create_executor("", type="runninghub", api_key="k", server_output_dir=tmp_path)
    ex = create_executor("http://127.0.0.1:9", executor="http", server_output_dir=tmp_path)
    assert ex.shared is not None and ex.shared.folder == str(tmp_path)  # type: ignore[attr-defined]
    ex.close()


def test_the_manifest_key_is_relative_to_the_manifest_and_the_environment_names_it_without_backends(tmp_path, monkeypatch):
    (tmp_path / "wf.json").write_text('{"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}')
    head = "name: t\nworkflows: [{name: w, source: wf.json}]\nsweep: {grid: {width: [1]}}\n"
    path = tmp_path / "m.yaml"
    path.write_text(head + "backends:\n  - url: http://127.0.0.1:9\n    server_output_dir: comfy/output\n")
    assert load_manifest(path).backends[0].server_output_dir == str(tmp_path / "comfy" / "output")
    path.write_text(head + "backends:\n  - type: runninghub\n    api_key: k\n    server_output_dir: /x\n")
    with pytest.raises(ManifestError, match="server_output_dir"):
        load_manifest(path)
    monkeypatch.setenv("COMFYUI_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("COMFYUI_OUTPUT_DIR", "/srv/comfy/output")
    path.write_text(head)
    assert load_manifest(path).backends[0].server_output_dir == "/srv/comfy/output"


def test_the_managed_server_is_read_from_its_own_folder(tmp_path, monkeypatch):
    server = SimpleNamespace(url="http://127.0.0.1:9", output_dir=tmp_path / "output")

    class Managed:
        def __enter__(self):
            return server

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(connect, "managed_server", lambda notice: Managed())
    spec = connect.BackendSpec(name="local", type="comfyui", url="local", executor="http")
    with ExitStack() as stack:
        ex = connect.build_executor(spec, stack, print)
        assert ex.shared is not None and ex.shared.folder == str(tmp_path / "output")  # type: ignore[attr-defined]
