"""The batch runner end to end on real ComfyUI servers (two instances, to see the work spread)."""

from __future__ import annotations

import json
import shutil

import pytest

from comfykit_batch.cli import main
from tests.helpers import png
from tests.helpers.manifests import ROOT

pytestmark = pytest.mark.real


def _example(tmp_path, *backend_urls):
    """The shipped example manifest, pointed at the test servers and a temporary output folder."""
    text = (ROOT / "manifests" / "sweep.yaml").read_text()
    shutil.copytree(ROOT / "manifests" / "workflows", tmp_path / "workflows")
    backends = "".join(f"  - name: s{i}\n    url: {u}\n" for i, u in enumerate(backend_urls))
    start = text.index("backends:\n")
    end = text.index("workflows:\n", start)
    text = text[:start] + "backends:\n" + backends + "\n" + text[end:]
    text = text.replace("name: example-sweep", f"name: example-sweep\noutput: {tmp_path / 'out'}")
    p = tmp_path / "sweep.yaml"
    p.write_text(text)
    return p


def test_example_sweep_on_two_real_servers(tmp_path, real_comfy, real_comfy_b, capsys):
    m = _example(tmp_path, real_comfy.url, real_comfy_b.url)
    assert main([str(m), "-q"]) == 0
    out = capsys.readouterr().out
    assert "28 completed, 0 failed" in out
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    jobs = index["jobs"]
    assert len(jobs) == 28 and {j["backend"] for j in jobs} == {"s0", "s1"}
    assert (tmp_path / "out" / "manifest.yaml").read_text() == m.read_text()
    for j in jobs:
        (f,) = j["files"]
        assert f["var"] == "swatch" and f["kind"] == "image"
        w, h, rows = png.decode((tmp_path / "out" / f["path"]).read_bytes())
        assert (w, h) == (j["params"]["width"], 64), "the swept width reached the server"
        assert j["texts"] == {"caption": [f"a swatch of {j['params']['label']}"]}
        assert j["seeds"] == {"seed": j["params"]["seed"]}
        if j["params"]["strength"] == 0.0:  # no noise: the exact colour
            c = j["params"]["color"]
            want = ((c >> 16) & 255, (c >> 8) & 255, c & 255)
            assert all(abs(a - b) <= 1 for a, b in zip(rows[0][0][:3], want, strict=True))
    # the same seed gives the same noise, a different seed different noise
    by = {(j["params"]["strength"], j["params"]["width"], j["params"]["label"], j["params"]["seed"]): j for j in jobs}
    a = by[(0.5, 32, "red", 1000)]["files"][0]["sha256"]
    b = by[(0.5, 32, "red", 1001)]["files"][0]["sha256"]
    assert a != b
    # a re-run has nothing to do
    assert main([str(m), "-q"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_deleted_file_is_redone_on_resume(tmp_path, real_comfy, capsys):
    m = _example(tmp_path, real_comfy.url)
    assert main([str(m), "-q", "--limit", "4"]) == 0
    jobs = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    (tmp_path / "out" / jobs[0]["files"][0]["path"]).unlink()
    capsys.readouterr()
    assert main([str(m), "-q", "--limit", "4"]) == 0
    assert "1 completed, 0 failed, 3 completed earlier" in capsys.readouterr().out
    assert (tmp_path / "out" / jobs[0]["files"][0]["path"]).exists()


def test_list_params_cli(capsys, real_comfy):
    wf = str(ROOT / "manifests" / "workflows" / "noisy_swatch.json")
    assert main(["list-params", wf, "--server", real_comfy.url]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip() and not line.startswith("outputs")}
    assert set(lines) == {"width", "height", "color", "seed", "strength", "label"}
    assert "yes" in lines["color"] and "int" in lines["width"] and "float" in lines["strength"]
    assert "outputs: swatch (node 3), caption (node 5)" in out
    assert main(["list-params", wf, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {p["name"]: p["default"] for p in data["parameters"]}["strength"] == 0.2
