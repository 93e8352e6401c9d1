"""Our own versions of the published comfykit's five example programs, run unchanged against this package.

Each is a script as a comfykit user writes one (``asyncio.run``, ``assert``s on the results), importing
``comfykit_batch`` instead of ``comfykit``; it runs in its own process against the real ComfyUI (and
the fake RunningHub for the cloud example) and must exit 0 with its last line printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WORKFLOWS
from tests.fakes.fake_runninghub import GOOD_KEY, FakeRunningHub

pytestmark = pytest.mark.real

EXAMPLES = Path(__file__).with_name("examples")
RH_WORKFLOW = "1904136902449209346"


def _run(script: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYUI_", "RUNNINGHUB_", "COMFYKIT_"))}
    proc = subprocess.run([sys.executable, script], cwd=EXAMPLES, env={**clean, **env}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_quick_start(real_comfy):
    assert _run("ex01_quick_start.py", COMFYUI_BASE_URL=real_comfy.url).rstrip().endswith("quick start done")


def test_quick_start_with_a_failing_run_passes_in_comfykit_compat_mode(real_comfy):
    """comfykit's own check, ``status in ["completed", "error"]``, holds for a failed run with COMFYKIT_COMPAT."""
    out = _run("ex01_quick_start.py", COMFYUI_BASE_URL=real_comfy.url, COMFYKIT_COMPAT="comfykit",
               EXAMPLE_WORKFLOW=str(WORKFLOWS / "raise.json"))
    assert "status error" in out and out.rstrip().endswith("quick start done")


def test_configuration():
    assert _run("ex02_configuration.py").rstrip().endswith("configuration done")


def test_local_workflows(real_comfy):
    out = _run("ex03_local_workflows.py", COMFYUI_BASE_URL=real_comfy.url)
    assert "ignored ['seed', 'steps']" in out and out.rstrip().endswith("local workflows done")


def test_runninghub_cloud(real_comfy):
    fake = FakeRunningHub().start()
    try:
        fake.workflows[RH_WORKFLOW] = {
            "3": {"class_type": "KSampler", "inputs": {"seed": 1}, "_meta": {"title": "$seed"}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "$prompt.text!"}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
        out = _run("ex04_runninghub_cloud.py", COMFYUI_BASE_URL=real_comfy.url, RUNNINGHUB_API_KEY=GOOD_KEY,
                   RUNNINGHUB_BASE_URL=fake.url, EXAMPLE_RUNNINGHUB_WORKFLOW=RH_WORKFLOW)
        assert out.rstrip().endswith("runninghub done")
        assert sum(path.endswith("/create") for path, _ in fake.calls) == 3
    finally:
        fake.stop()


def test_advanced_features(real_comfy):
    out = _run("ex05_advanced_features.py", COMFYUI_BASE_URL=real_comfy.url)
    assert "expected failure: failed:" in out and out.rstrip().endswith("advanced features done")
