"""``comfykit-batch init``: a starter manifest that loads, plans, and becomes a sweep by uncommenting."""

import re
from pathlib import Path

import pytest
import yaml

from comfykit_batch.batch.run.plan import build_plan
from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.batch.spec.starter import starter_manifest
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.cli import main
from comfykit_batch.workflow import Workflow

ROOT = Path(__file__).resolve().parents[2]
SWATCH = ROOT / "manifests" / "workflows" / "noisy_swatch.json"


def checked(path: Path) -> tuple:
    """Load the manifest, check every swept name against its workflow (as the run does), and plan it."""
    m = load_manifest(path)
    workflows = {w.name: Workflow.from_file(w.source) for w in m.workflows}
    sweep = Sweep(m.blocks, {k: wf.fingerprint() for k, wf in workflows.items()})
    for name, params in sweep.param_sets():
        workflows[name].check_params(dict.fromkeys(params))
    return m, sweep, build_plan(m, sweep)


def uncomment(text: str) -> str:
    """What a user does next: uncomment the grid and seeds lines."""
    return re.sub(r"^    # (grid:|  \w+: \[|seeds:)", r"    \1", text, flags=re.M)


@pytest.fixture(autouse=True)
def no_server_env(monkeypatch):
    monkeypatch.delenv("COMFYUI_URL", raising=False)
    monkeypatch.delenv("COMFYUI_BASE_URL", raising=False)


def test_init_with_a_workflow_writes_a_manifest_that_loads_and_plans(tmp_path, capsys):
    out = tmp_path / "sub" / "first.yaml"
    assert main(["init", str(SWATCH), "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (6 parameters from ")
    text = out.read_text()
    schema_ref = text.splitlines()[0].split("$schema=")[1]
    assert (out.parent / schema_ref).resolve() == (ROOT / "schemas" / "manifest.schema.json").resolve()
    assert "color: 16711680" in text and "# number, required, default 16711680, node 1.color: 0xRRGGBB fill colour" in text
    assert '#   label: ["red"]' in text and "# seeds: {param: seed, count: 4, base: 0}" in text
    m, sweep, plan = checked(out)
    assert m.workflows[0].source == str(SWATCH) and plan.total == 1


def test_uncommenting_the_skeleton_gives_a_sweep(tmp_path):
    out = tmp_path / "m.yaml"
    out.write_text(uncomment(starter_manifest(Workflow.from_file(SWATCH), source=str(SWATCH))))
    m, sweep, plan = checked(out)
    assert set(m.blocks[0]["grid"]) == {"width", "height", "strength", "label"} and plan.total == 4


def test_init_without_a_workflow_writes_a_skeleton_that_loads(tmp_path):
    out = tmp_path / "m.yaml"
    assert main(["init", "-o", str(out)]) == 0
    m = load_manifest(out)
    assert m.workflows[0].source == str(tmp_path / "workflow.json") and m.blocks == [{"workflow": "workflow"}]


def test_required_parameter_without_a_value_gets_a_placeholder(tmp_path):
    wf = Workflow({"1": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": ["3", 0]},
                         "_meta": {"title": "$prompt.text!:the prompt"}},
                   "2": {"class_type": "X", "inputs": {}}})
    text = starter_manifest(wf, source="wf.json", name="my batch!")
    assert 'prompt: "CHANGE ME"' in text and "<- CHANGE ME" in text and "name: my-batch" in text
    data = yaml.safe_load(text)
    assert data["sweep"][0]["params"] == {"prompt": "CHANGE ME"}


def test_init_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "m.yaml"
    out.write_text("mine")
    assert main(["init", "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {out} exists; use --force to overwrite it, or -o FILE"
    assert out.read_text() == "mine"
    assert main(["init", "-o", str(out), "--force"]) == 0 and out.read_text() != "mine"


def test_init_with_a_missing_workflow_is_one_line(tmp_path, capsys):
    assert main(["init", str(tmp_path / "nope.json"), "-o", str(tmp_path / "m.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.json: no such workflow file" in err and not (tmp_path / "m.yaml").exists()
