"""A real S3 protocol server on loopback (moto's ThreadedMotoServer) with a fresh bucket per test.

Credentials are dummies set in the environment, as AWS's own variables: the code under test must
find them there and never write them anywhere. If the server cannot start, the tier fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SECRET = "s3cr3t-" + uuid.uuid4().hex  # searched for in everything the store writes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.fail(f"the S3 tier needs moto[server] and s3fs: {exc}")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start fails the tier loudly
        pytest.fail(f"moto's S3 server could not start: {exc}")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """``s3://<fresh bucket>``, with the AWS environment pointing at the loopback server.

    ``XDG_CACHE_HOME`` moves too: a remote folder's local side goes there by default.
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem().mkdir(name)
    yield f"s3://{name}"
    s3fs.S3FileSystem.clear_instance_cache()


def environment() -> dict[str, str]:
    """The environment a child process needs (inside a test using ``bucket``: AWS variables, cache folder)."""
    return dict(os.environ)
