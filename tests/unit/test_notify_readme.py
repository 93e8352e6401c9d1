"""The README's webhook receiver, run as written: it accepts a delivery signed by the batch and refuses a forged one."""

from __future__ import annotations

import json

from comfykit_batch.batch.run.notify import signature
from tests.unit.test_authoring_readme import README, fenced


def _receiver():
    section = README.split("**Webhooks.**", 1)[1].split("**Stop on systematic failure.**", 1)[0]
    code = next(block for block in fenced("text", section) if "def verified" in block)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    assert len(code.strip().splitlines()) <= 5
    return scope["verified"]


def test_the_readmes_receiver_accepts_the_batchs_signature_and_refuses_a_forgery():
    verified = _receiver()
    body = json.dumps({"event": "run.finished", "batch": "overnight"}).encode()
    header = signature("a-shared-secret", body)
    assert header.startswith("sha256=") and verified("a-shared-secret", body, header)
    assert not verified("another-secret", body, header)
    assert not verified("a-shared-secret", body + b" ", header)
