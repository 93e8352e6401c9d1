"""The README's "Your first workflow", run for real: the manifest it shows, on the real ComfyUI."""

import json
import shutil

import pytest

from comfykit_batch.cli import main
from tests.unit.test_authoring_readme import ROOT, fenced, section

pytestmark = pytest.mark.real


@pytest.fixture
def first_run(tmp_path, monkeypatch, real_comfy, capsys):
    """Steps 4 to 6 of the walkthrough: first.yaml as the README shows it, run against COMFYUI_URL."""
    (tmp_path / "manifests" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "manifests" / "workflows" / "noisy_swatch.json", tmp_path / "manifests" / "workflows")
    (tmp_path / "first.yaml").write_text(fenced("yaml", section())[0])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMFYUI_BASE_URL", raising=False)
    monkeypatch.setenv("COMFYUI_URL", real_comfy.url)  # COMFYUI_URL comes before the managed server
    assert main(["first.yaml", "-q"]) == 0
    return tmp_path / "output" / "first-sweep", capsys.readouterr().out


def test_first_workflow_runs_and_a_rerun_skips_it(first_run, capsys):
    out, printed = first_run
    assert "first-sweep: finished: 8 completed, 0 failed" in printed
    jobs = [json.loads(line.rstrip(",")) for line in (out / "index.json").read_text().splitlines()[1:-1]]
    assert len(jobs) == 8 and all(j["status"] == "completed" for j in jobs)
    assert {j["params"]["label"] for j in jobs} == {"orange", "orange: noisy"}
    assert main(["first.yaml", "-q"]) == 0
    assert "first-sweep: finished: 0 completed, 0 failed" in capsys.readouterr().out


def test_first_workflow_ends_with_the_grid_and_gallery(first_run):
    out, _ = first_run
    assert (out / "grid.png").stat().st_size > 0 and (out / "gallery.html").exists()


def test_init_with_a_server_writes_its_types_and_ranges(tmp_path, real_comfy, capsys):
    out = tmp_path / "m.yaml"
    assert main(["init", str(ROOT / "manifests" / "workflows" / "noisy_swatch.json"), "--server", real_comfy.url, "-o", str(out)]) == 0
    text = out.read_text()
    width = next(line for line in text.splitlines() if line.startswith("    #   width:"))
    assert "# int 1.." in width and "default 64" in width  # the server's INT spec, not the literal's "number"
    from comfykit_batch.batch.spec.manifest import load_manifest

    assert load_manifest(out).blocks[0]["params"] == {"color": 16711680}
