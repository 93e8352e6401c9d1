"""Every manifest in the README loads as written, and the "Your first workflow" walkthrough prints what it shows."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def fenced(kind: str, text: str = README) -> list[str]:
    """The fenced blocks of one kind, with the indentation of a list item removed."""
    out = []
    for m in re.finditer(rf"^( *)```{kind}\n(.*?)^ *```", text, re.S | re.M):
        indent = len(m[1])
        out.append("".join(line[indent:] if line.strip() else "\n" for line in m[2].splitlines(True)))
    return out


def value_files(text: str, folder: Path) -> None:
    """Create the files a manifest's `from:` keys name, with the columns it asks for."""
    columns: dict[str, set[str]] = {}
    for name, column in re.findall(r"\{from: ([\w./-]+)(?:, column: (\w+))?\}", text):
        columns.setdefault(name, set()).update([column] if column else [])
    for name, cols in columns.items():
        path = folder / name
        if name.endswith(".csv"):
            header = sorted(cols) or ["a", "b"]
            path.write_text(",".join(header) + "\n" + ",".join(f"{c} 1" for c in header) + "\n")
        elif name.endswith(".jsonl"):
            path.write_text('{"width": 512, "height": 768}\n{"width": 768, "height": 512}\n')
        else:
            path.write_text("# one value\nblurry\n")


@pytest.fixture
def env(monkeypatch):
    for name in ("COMFYUI_URL", "COMFYUI_BASE_URL", "GPU1_SLOTS", "GPU2_URL", "GPU2_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMFYKIT_WEBHOOK_URL", "https://hooks.example.com/comfykit")  # what the README asks a user to set
    monkeypatch.setenv("COMFYKIT_WEBHOOK_SECRET", "a-shared-secret")


def test_every_readme_manifest_loads_as_written(tmp_path, env):
    blocks = fenced("yaml")
    assert len(blocks) >= 3
    for i, text in enumerate(blocks):
        folder = tmp_path / str(i)
        folder.mkdir()
        value_files(text, folder)
        (folder / "m.yaml").write_text(text)
        m = load_manifest(folder / "m.yaml")
        assert m.name == yaml.safe_load(text)["name"] and m.blocks


def test_the_worked_job_count(tmp_path, env):
    text = next(t for t in fenced("yaml") if "name: portraits" in t)
    (tmp_path / "m.yaml").write_text(text)
    m = load_manifest(tmp_path / "m.yaml")
    sweep = Sweep(m.blocks, {"txt2img": "f" * 64})
    assert "**480 jobs**" in README and sweep.upper_bound() == 640 and sweep.count() == 480 == len(list(sweep))
    assert m.backends[0].concurrency == 2 and m.backends[1].url == "http://10.0.0.6:8188" and m.backends[1].api_key is None
    assert m.backends[2].server_output_dir == "/srv/ComfyUI/output" and m.backends[0].server_output_dir is None


def test_the_quoting_advice_is_what_yaml_does():
    assert yaml.safe_load("[yes, no, on, off, true, false, 0x10, 010, \"no\"]") == [True, False, True, False, True, False, 16, 8, "no"]


@pytest.fixture
def walkthrough(tmp_path, monkeypatch, env):
    """The repository as the walkthrough sees it: the example workflow, run from the root."""
    (tmp_path / "manifests" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "manifests" / "workflows" / "noisy_swatch.json", tmp_path / "manifests" / "workflows")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def section() -> str:
    return README.split("## Your first workflow", 1)[1].split("\n## ", 1)[0]


def test_walkthrough_list_params_prints_what_the_readme_shows(walkthrough, capsys):
    assert "comfykit-batch list-params manifests/workflows/noisy_swatch.json" in section()
    assert main(["list-params", "manifests/workflows/noisy_swatch.json"]) == 0
    shown = fenced("text", section())[0]
    assert capsys.readouterr().out == shown


def test_walkthrough_init_then_the_manifest_and_its_dry_run(walkthrough, capsys):
    assert main(["init", "manifests/workflows/noisy_swatch.json", "-o", "first.yaml"]) == 0
    assert load_manifest("first.yaml").workflows[0].source == str(walkthrough / "manifests" / "workflows" / "noisy_swatch.json")
    manifest = fenced("yaml", section())[0]
    (walkthrough / "first.yaml").write_text(manifest)
    capsys.readouterr()
    assert main(["first.yaml", "--dry-run"]) == 0
    plan = fenced("text", section())[1]
    assert capsys.readouterr().out == plan
    assert not (walkthrough / "output").exists()  # a dry run creates nothing
