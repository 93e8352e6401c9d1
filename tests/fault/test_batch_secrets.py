"""Secrets at the batch level: a signed input URL's query and a backend's key never reach logs, the index or files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import ROOT, write_manifest
from tests.helpers.png import encode

SECRET_SIG = "sig-5ecr3t-0123456789"
API_KEY = "sk-batch-key-abcdef0123456789"


@pytest.fixture
def image_host():
    """A host serving one PNG, as a signed CDN link would."""
    data = encode(2, 2, (10, 20, 30))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_signed_query_and_key_stay_out_of_logs_index_and_files(tmp_path, workflows, image_host):
    fake = FakeComfyUI().start()
    try:
        url = f"{image_host}/inputs/cat.png?X-Amz-Signature={SECRET_SIG}&token={SECRET_SIG}"
        m = write_manifest(tmp_path, [{"name": "f", "url": fake.url, "api_key": "${TEST_BATCH_KEY}"}],
                           workflow=workflows / "upload_invert.json", sweep={"params": {"image": url}})
        env = dict(os.environ, PYTHONPATH=str(ROOT), TEST_BATCH_KEY=API_KEY)
        proc = subprocess.run([sys.executable, "-m", "comfykit_batch", str(m), "-vv"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "DEBUG" in proc.stderr, "the run really logged at debug level"
        files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
        assert len(files) >= 4, "index, journal, manifest copy and the output file were all checked"
        for secret in (SECRET_SIG, API_KEY):
            assert secret not in proc.stdout and secret not in proc.stderr
            for path in files:
                assert secret.encode() not in path.read_bytes(), f"{secret[:6]}... leaked into {path.name}"
        index = (tmp_path / "out" / "index.json").read_text()
        assert f"{image_host}/inputs/cat.png" in index, "the host and path of the input are kept"
        assert fake.uploads, "the input was uploaded to the backend"
    finally:
        fake.stop()
