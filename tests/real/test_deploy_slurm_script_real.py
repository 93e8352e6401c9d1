"""The shipped array script's own ComfyUI (``COMFYUI_DIR``), run as a task would run it, on the real server code.

The SLURM tier runs the script under a real SLURM against fake servers; this runs its other branch:
a ComfyUI checkout started for the task, saving into a folder of the task's own that the runner
reads directly (``COMFYUI_OUTPUT_DIR``, checked by a probe before the first job), removed at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from comfykit_batch.local_comfyui import install
from tests.helpers.manifests import ROOT

pytestmark = pytest.mark.real


def test_the_array_script_starts_comfyui_with_an_output_folder_the_runner_reads(tmp_path):
    inst = install()
    base, scratch = tmp_path / "comfy", tmp_path / "scratch"
    for d in (base / "front", base / "custom_nodes", base / "input", scratch):
        d.mkdir(parents=True)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "t", "output": str(tmp_path / "out"),
        "workflows": [{"name": "swatch", "source": str(ROOT / "manifests" / "workflows" / "noisy_swatch.json")}],
        "sweep": {"workflow": "swatch", "params": {"color": 0xFF0000}, "seeds": {"param": "seed", "count": 4, "base": 1}},
    }))
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_URL", "COMFYUI_BASE_URL", "COMFYUI_OUTPUT_DIR",
                                                             "PYTHONHOME")}
    env.update(PYTHONPATH=f"{ROOT}{os.pathsep}{inst.stub}", COMFYKIT_PYTHON=sys.executable, COMFYUI_DIR=str(inst.comfy),
               COMFYUI_PYTHON=str(inst.python), TMPDIR=str(scratch), SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_TASK_COUNT="1",
               COMFYUI_ARGS=f"--cpu --base-directory {base} --front-end-root {base / 'front'} --disable-api-nodes "
                            "--database-url sqlite:///:memory:")
    proc = subprocess.run(["bash", str(ROOT / "deploy" / "slurm" / "comfykit-array.sbatch"), str(manifest)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    logs = "".join(p.read_text()[-2000:] for p in tmp_path.glob("comfyui-*.log"))
    assert proc.returncode == 0, proc.stderr[-2000:] + logs
    jobs = json.loads((tmp_path / "out" / "parts" / "0000-of-0001" / "index.json").read_text())["jobs"]
    assert sorted(j["params"]["seed"] for j in jobs) == [1, 2, 3, 4] and {j["status"] for j in jobs} == {"completed"}
    for j in jobs:
        (f,) = j["files"]
        assert hashlib.sha256((tmp_path / "out" / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert list(scratch.iterdir()) == []  # the task's output folder went with the task
    assert not list(base.rglob("*.png"))  # the server saved into that folder, not its default one
