"""The dry run's model plan: the README's "Model sweeps" manifest gives the plan the README shows; a sweep with no
model file has no model lines; ``schedule: sweep`` plans sweep order; model-aware shards through the session."""

from __future__ import annotations

import json
from pathlib import Path

from comfykit_batch.batch.run.keys import key_function
from comfykit_batch.batch.run.plan import build_plan
from comfykit_batch.batch.run.session import RunOptions, prepare, selection_of
from comfykit_batch.batch.spec.shard import Shard
from tests.unit.test_authoring_readme import README, fenced

TXT2IMG = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl_base.safetensors"}, "_meta": {"title": "$ckpt.ckpt_name"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}, "_meta": {"title": "$prompt.text"}},
}


def _folder(tmp_path: Path, manifest: str, workflow: dict = TXT2IMG) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "txt2img.json").write_text(json.dumps(workflow))
    (tmp_path / "m.yaml").write_text(manifest)
    return tmp_path / "m.yaml"


def _readme_manifest() -> str:
    return next(text for text in fenced("yaml") if "name: checkpoints" in text)


def _plan_lines(path: Path, schedule: str | None = None) -> list[str]:
    """The plan's model lines as the dry run prints them, without the plan's own indent."""
    prepared = prepare(path)
    plan = build_plan(prepared.manifest, prepared.sweep, key_of=key_function(prepared.workflows), schedule=schedule)
    assert plan.models is None or "\n".join(plan.models.lines()) in "\n".join(plan.lines)
    return [line[2:] for line in plan.models.lines()] if plan.models is not None else []


def test_the_readmes_model_sweep_plans_what_the_readme_shows(tmp_path):
    shown = fenced("text", README.split("## Model sweeps", 1)[1].split("\n## ", 1)[0])[0].splitlines()
    assert _plan_lines(_folder(tmp_path, _readme_manifest())) == shown


def test_a_sweep_that_loads_no_model_file_has_no_model_plan(tmp_path):
    plain = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}, "_meta": {"title": "$width"}}}
    path = _folder(tmp_path, "name: plain\nworkflows:\n  - {name: txt2img, source: workflows/txt2img.json}\n"
                             "sweep:\n  grid: {width: [8, 16]}\n", plain)
    assert _plan_lines(path) == []


def test_schedule_sweep_plans_the_loads_of_sweep_order(tmp_path):
    lines = _plan_lines(_folder(tmp_path, _readme_manifest()), schedule="sweep")
    assert lines[0].endswith("schedule: sweep") and lines[-1].strip() == "model loads planned: 9 (gpu1 5, gpu2 4); in sweep order: ~9"


def test_shards_of_a_model_sweep_keep_each_key_whole_through_the_session(tmp_path):
    path = _folder(tmp_path, _readme_manifest())
    prepared = prepare(path)
    keys_of = key_function(prepared.workflows)
    assert keys_of is not None
    shards = [selection_of(RunOptions(shard=Shard(i, 3)), prepared) for i in range(3)]
    taken = [[j for j in s.jobs(prepared.sweep)] for s in shards]
    assert sorted(j.id for part in taken for j in part) == sorted(j.id for j in prepared.sweep)
    assert all(len({keys_of(j) for j in part}) == 1 for part in taken)  # 3 keys of 3 jobs on 3 shards: one key each
    hashed = selection_of(RunOptions(shard=Shard(0, 3), schedule="sweep"), prepared)
    assert hashed.keys is None
