"""Model-aware scheduling on the real ComfyUI: jobs that load the same VAE run together, so it is loaded once.

The server really loads model files here: three random-weight SD VAEs (``tests/helpers/real_models.py``),
linked into the running server's ``models/vae``. ComfyUI keeps the outputs of the last prompt's nodes only
(its default, classic cache), so a prompt reusing the previous prompt's ``VAELoader`` input takes the VAE
from the cache, and any other prompt reads its file again. The sweep below varies the VAE fastest: in the
sweep's order every job switches VAE; scheduled by model, each file is read once.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from comfykit_batch.cli import main
from tests.helpers import png
from tests.helpers.manifests import write_manifest
from tests.helpers.real_models import count_loads, ensure_vae_files
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.real

LOADER = "1"
WORKFLOW = {
    LOADER: {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}, "_meta": {"title": "$vae.vae_name"}},
    "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": [LOADER, 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "ckb-models/x"},
          "_meta": {"title": "$output.decoded, $prefix.filename_prefix"}},
}
PREFIXES = [f"ckb-models/p{i}" for i in range(4)]  # every job's prompt differs; the VAE axis comes last: fastest


def _listed(url: str, names: list[str]) -> bool:
    """The server lists the files both where a client looks for models and in the loader's choices."""
    folder = requests.get(f"{url}/models/vae", timeout=10).json()
    info = requests.get(f"{url}/object_info/VAELoader", timeout=10).json()
    choices = info["VAELoader"]["input"]["required"]["vae_name"][0]
    return set(names) <= set(folder) and set(names) <= set(choices)


@pytest.fixture(scope="module")
def vae_server(real_comfy):
    """The session's real server with the three VAEs in its models folder, seen without a restart.

    ComfyUI caches a folder's listing with the folder's mtime and lists it again once that changes (a file
    added, or the folder created), so the running server sees the files on its next listing.
    """
    requests.get(f"{real_comfy.url}/models/vae", timeout=10).raise_for_status()  # the listing is cached from here on
    names = ensure_vae_files(real_comfy.base_dir / "models")
    wait_for(lambda: _listed(real_comfy.url, names), limit=30, every=0.1)
    return real_comfy, names


def _run(tmp_path: Path, server, names: list[str], schedule: str | None, capsys) -> dict:
    """Run the 12-job sweep into its own folder; the run's records, loads per job and wall times."""
    tmp_path.mkdir()
    wf = tmp_path / "vae_decode.json"
    wf.write_text(json.dumps(WORKFLOW))
    defaults = {"timeout": 300, "concurrency": 1, **({"schedule": schedule} if schedule else {})}
    m = write_manifest(tmp_path, [{"name": "local", "url": server.url, "concurrency": 1}], workflow=wf,
                       sweep={"workflow": "w", "grid": {"prefix": PREFIXES, "vae": names}}, defaults=defaults,
                       name=f"models-{schedule or 'default'}")
    capsys.readouterr()
    start = time.monotonic()
    assert main([str(m), "-q"]) == 0
    elapsed = time.monotonic() - start
    out = capsys.readouterr().out
    assert "12 completed, 0 failed" in out, out
    wall = re.search(r" of 12 in ([\d.]+)s", out)
    jobs = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    loads = {}
    for j in jobs:
        history = requests.get(f"{server.url}/history/{j['prompt_id']}", timeout=10).json()
        loads[j["id"]] = count_loads(history[j["prompt_id"]], {LOADER})
    return {"manifest": m, "jobs": jobs, "loads": loads, "elapsed": elapsed, "wall": float(wall.group(1)) if wall else None,
            "out": tmp_path / "out"}


def _check_outputs(run: dict) -> None:
    for j in run["jobs"]:
        assert j["status"] == "completed", j
        (f,) = j["files"]
        assert f["var"] == "decoded" and f["kind"] == "image"
        w, h, _ = png.decode((run["out"] / f["path"]).read_bytes())
        assert (w, h) == (64, 64)


def _order(run: dict) -> list[str]:
    """The VAE of each job in the order the server ran them (``v0`` for the first file, ...)."""
    ran = sorted(run["jobs"], key=lambda j: j["started"])
    return [j["params"]["vae"].split("-")[-1].split(".")[0] for j in ran]


def test_jobs_loading_the_same_vae_run_together(tmp_path, vae_server, capsys):
    server, names = vae_server
    # the sweep's order first: nothing before it loaded these files, so every job of it loads one
    sweep = _run(tmp_path / "sweep", server, names, "sweep", capsys)
    scheduled = _run(tmp_path / "models", server, names, None, capsys)  # the default: by model
    for run in (sweep, scheduled):
        _check_outputs(run)

    # the same jobs, ids and seq, only the order differs
    assert {(j["id"], j["seq"]) for j in sweep["jobs"]} == {(j["id"], j["seq"]) for j in scheduled["jobs"]}
    assert len({j["id"] for j in sweep["jobs"]}) == 12
    prompt_ids = [j["prompt_id"] for run in (sweep, scheduled) for j in run["jobs"]]
    assert len(set(prompt_ids)) == 24, "each job is its own prompt"

    sweep_loads, scheduled_loads = sum(sweep["loads"].values()), sum(scheduled["loads"].values())
    per_file = Counter(j["params"]["vae"] for j in scheduled["jobs"] if scheduled["loads"][j["id"]])
    with capsys.disabled():
        for label, run, total in (("sweep", sweep, sweep_loads), ("models", scheduled, scheduled_loads)):
            print(f"\n{label}: {total} VAE loads in 12 jobs; wall {run['wall']}s (measured {run['elapsed']:.2f}s);"
                  f" order {' '.join(_order(run))}")
    assert max(per_file.values(), default=0) <= 1, f"a VAE file was loaded more than once: {per_file}"
    assert scheduled_loads <= 3
    assert sweep_loads == 12, "in the sweep's order the VAE changes on every job"
    assert sweep_loads >= 3 * scheduled_loads


def test_dry_run_of_the_scheduled_manifest(tmp_path, vae_server, capsys):
    server, names = vae_server
    wf = tmp_path / "vae_decode.json"
    wf.write_text(json.dumps(WORKFLOW))
    m = write_manifest(tmp_path, [{"name": "local", "url": server.url, "concurrency": 1}], workflow=wf,
                       sweep={"workflow": "w", "grid": {"prefix": PREFIXES, "vae": names}}, defaults={"concurrency": 1})
    assert main([str(m), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "12 jobs" in out, out
    with capsys.disabled():
        print(f"\ndry run of the scheduled manifest:\n{out}")
    assert not (tmp_path / "out" / "index.json").exists(), "a dry run runs nothing"
