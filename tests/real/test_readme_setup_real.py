"""The README's first command, exactly as written, in a copy of the checkout: set-up, then the example run.

It installs only the runtime (no test stack), runs the shipped sweep on the managed local ComfyUI, and
leaves ``comfykit-batch`` on the shell's PATH for the walkthrough's commands. The copy shares this
checkout's managed server installation (``COMFYKIT_LOCAL_COMFYUI``) instead of installing another.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from comfykit_batch.local_comfyui import default_home
from tests.helpers.manifests import ROOT

pytestmark = pytest.mark.real

README = (ROOT / "README.md").read_text()
SETUP, TESTS = re.findall(r"```bash\n(.*?)\n```", README, re.DOTALL)[:2]


def _copy_of_checkout(dest: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():  # as git checks it out (the package's schemas folder is one)
            (dest / name).symlink_to(os.readlink(ROOT / name))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_the_two_commands_set_up_the_same_venv_and_activate_it():
    assert SETUP.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . && ")
    assert TESTS == "python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test]' && python -m pytest"
    assert TESTS in (ROOT / ".ci" / "run").read_text().splitlines(), "CI runs the README's test command"


def test_first_command_runs_the_example_with_the_runtime_only(real_comfy, tmp_path):
    repo = _copy_of_checkout(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYUI_", "VIRTUAL_ENV"))}
    env["COMFYKIT_LOCAL_COMFYUI"] = str(default_home())  # the server the real tier already installed
    script = f"{SETUP} && comfykit-batch list-params manifests/workflows/noisy_swatch.json"
    proc = subprocess.run(["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "outputs: swatch (node 3), caption (node 5)" in proc.stdout, "comfykit-batch is on PATH after set-up"
    jobs = json.loads((repo / "output" / "example-sweep" / "index.json").read_text())["jobs"]
    assert len(jobs) == 28 and all(j["status"] == "completed" for j in jobs)
    installed = subprocess.run([str(repo / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, check=True).stdout.lower()
    assert "pytest==" not in installed and "playwright==" not in installed, "the runtime only, no test stack"
    assert (repo / "output" / "example-sweep" / "gallery.html").is_file()
