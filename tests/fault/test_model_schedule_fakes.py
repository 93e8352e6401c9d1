"""Model-aware scheduling through the command line, on fake servers that count the models they load."""

from __future__ import annotations

import json

import pytest

from comfykit_batch.cli import main
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import write_manifest

VAES = [f"v{i}.safetensors" for i in range(3)]
SWEEP = {"grid": {"width": [1, 2, 3, 4], "vae": VAES}}  # the model axis varies fastest: 12 jobs
WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}, "_meta": {"title": "$width"}},
    "2": {"class_type": "VAELoader", "inputs": {"vae_name": VAES[0]}, "_meta": {"title": "$vae.vae_name"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "m"}, "_meta": {"title": "$output.image"}},
}


@pytest.fixture
def farm():
    servers = [FakeComfyUI(model_files={"vae": VAES}, switch_cost=0.01).start() for _ in range(2)]
    yield servers
    for s in servers:
        s.stop()


def _run(tmp_path, farm, name, *extra):
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps(WORKFLOW))
    out = tmp_path / name
    out.mkdir()
    m = write_manifest(out, [{"name": f"f{i}", "url": s.url} for i, s in enumerate(farm)], workflow=wf, sweep=SWEEP)
    before = sum(s.switches for s in farm)
    assert main([str(m), "-q", *extra]) == 0
    jobs = json.loads((out / "out" / "index.json").read_text())["jobs"]
    assert len(jobs) == 12 and all(j["status"] == "completed" for j in jobs)
    return sum(s.switches for s in farm) - before, jobs


def test_grouped_jobs_load_each_model_about_once_where_sweep_order_loads_per_job(tmp_path, farm):
    grouped, jobs = _run(tmp_path, farm, "grouped")
    in_order, same_jobs = _run(tmp_path, farm, "in_order", "--schedule", "sweep")
    assert grouped <= 4 and in_order >= 8  # 3 models on 2 servers, against one load for almost every job
    assert sorted((j["id"], j["seq"]) for j in jobs) == sorted((j["id"], j["seq"]) for j in same_jobs)


def test_the_summary_counts_each_backends_model_loads(tmp_path, farm, capsys):
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps(WORKFLOW))
    m = write_manifest(tmp_path, [{"name": f"f{i}", "url": s.url} for i, s in enumerate(farm)], workflow=wf, sweep=SWEEP)
    assert main([str(m)]) == 0
    err = capsys.readouterr()
    text = err.out + err.err
    for i, s in enumerate(farm):
        assert f"backend f{i}: " in text and f"{s.switches} model load" in text.split(f"backend f{i}: ", 1)[1].splitlines()[0]


def test_a_resumed_run_continues_the_model_its_server_still_holds(tmp_path):
    server = FakeComfyUI(model_files={"vae": VAES}).start()
    try:
        wf = tmp_path / "wf.json"
        wf.write_text(json.dumps(WORKFLOW))
        m = write_manifest(tmp_path, [{"name": "f", "url": server.url, "concurrency": 1}], workflow=wf, sweep=SWEEP)
        plan = main([str(m), "--dry-run", "-q"])
        assert plan == 0
        first_v1 = [line.split()[0] for line in _dry_run_ids(tmp_path, m) if VAES[1] in line][:2]
        assert main([str(m), "-q", "--only", *first_v1]) == 0  # the run stops in the middle of v1's group
        assert server.model_log[-1][1] == frozenset({("vae", VAES[1])})
        switches = server.switches
        assert main([str(m), "-q"]) == 0
        rest = [entry for entry in server.model_log[2:]]
        assert rest[0][1] == frozenset({("vae", VAES[1])}) and not rest[0][2]  # continued v1, no load
        assert server.switches - switches == 2  # then v0 and v2, once each
    finally:
        server.stop()


def _dry_run_ids(tmp_path, manifest) -> list[str]:
    from comfykit_batch.batch.run.session import plan

    return [f"{j.id} {json.dumps(dict(j.params))}" for j in plan(manifest, show=12).first_jobs]
