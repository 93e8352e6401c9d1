"""Issue 19: a redirect answered on /view fails the batch job as ``auth`` (final), as any other request's does.

A ComfyUI-Login server answers 302 to /login on every route; on /view it came only at download time,
where the batch recorded it as ``connection`` and kept sending jobs to a backend that refuses them.
"""

from __future__ import annotations

import json
from collections import deque

import pytest

from comfykit_batch.cli import main
from tests.helpers.manifests import write_manifest


@pytest.mark.parametrize("executor", ["http", "websocket"])
def test_batch_records_a_redirect_on_view_as_auth_and_final(tmp_path, fake_comfy, workflows, executor):
    fake_comfy.script["GET /view"] = deque([(302, b"", {"Location": "/login"})] * 3)
    m = write_manifest(tmp_path, [{"name": "f", "url": fake_comfy.url, "executor": executor}],
                       workflow=workflows / "invert.json", sweep={"params": {"width": 4}})
    assert main([str(m), "-q"]) == 1
    [job] = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["error"]["kind"] == "auth" and not job["error"].get("transient")
    assert "redirect to a login page" in job["error"]["message"]
    assert [p for m_, p in fake_comfy.requests if p == "/view"] == ["/view"], "asked once: a redirect will not pass"
