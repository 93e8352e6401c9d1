"""The XY grid image: layout in sweep order, failed and missing cells marked, --z pages, one-line errors."""

from __future__ import annotations

import pytest
from PIL import Image

from comfykit_batch.cli import main
from comfykit_batch.errors import UsageError
from comfykit_batch.report.grid import MISSING_BG, make_grid

from .conftest import COLORS


def _find(img: Image.Image, color: tuple[int, int, int]) -> list[tuple[int, int]]:
    """Positions (sampled every 4 px) inside areas of exactly this colour (3x3 px, so no anti-aliased text pixel counts)."""
    rgb = img.convert("RGB")
    return [(x, y) for y in range(1, rgb.height - 1, 4) for x in range(1, rgb.width - 1, 4)
            if all(rgb.getpixel((x + dx, y + dy)) == color for dx in (-1, 0, 1) for dy in (-1, 0, 1))]


def test_grid_places_each_job_in_its_row_and_column(demo_output):
    (path,) = make_grid(demo_output, "strength", "label", where={"seed": 1}, cell=64)
    assert path == demo_output / "grid.png"
    img = Image.open(path)
    red, blue, green = (_find(img, c) for c in COLORS.values())
    assert red and blue and green
    # rows follow the sweep order red, blue, green; strength 0.0 is the left column
    assert max(y for _, y in red) < min(y for _, y in blue) < max(y for _, y in blue) < min(y for _, y in green)
    pale_green = _find(img, (90, 210, 110))  # green at strength 0.5 (+50 per channel)
    assert pale_green and min(x for x, _ in pale_green) > max(x for x, _ in green)
    # (blue, 0.5) was never run: a grey "missing" cell in the blue row, right column
    grey = _find(img, MISSING_BG)
    assert grey and min(y for _, y in blue) - 8 <= min(y for _, y in grey) <= max(y for _, y in blue)
    assert min(x for x, _ in grey) > max(x for x, _ in blue)


def test_failed_job_is_a_marked_cell(demo_output, tmp_path):
    (path,) = make_grid(demo_output, "strength", "label", where=["seed=2"], cell=64, out=tmp_path / "g.png")
    from comfykit_batch.report.grid import FAILED_BG

    img = Image.open(path)
    failed = _find(img, FAILED_BG)
    green = _find(img, COLORS["green"])
    assert failed, "the failed (green, 0.5, seed 2) job is drawn as a red-tinted cell"
    assert min(x for x, _ in failed) > max(x for x, _ in green)  # right of green 0.0: the 0.5 column
    assert abs(min(y for _, y in failed) - min(y for _, y in green)) <= 8  # same row


def test_cell_items_give_the_reason():
    from comfykit_batch.report.grid import cell_items

    rec = {"status": "failed", "error": {"kind": "node_error", "message": "out of memory"}}
    assert [i.value for i in cell_items([rec], "swatch")] == ["failed: node_error: out of memory"]
    assert cell_items([], "swatch")[0].kind == "missing"
    done = {"status": "completed", "files": [], "texts": {}}
    assert cell_items([done], "swatch")[0].value == "no 'swatch' output"


def test_z_axis_writes_one_file_per_value(demo_output, tmp_path):
    paths = make_grid(demo_output, "seed", "label", z="strength", out=tmp_path / "g.png", cell=32)
    assert [p.name for p in paths] == ["g_strength-0.0.png", "g_strength-0.5.png"]
    assert all(Image.open(p).size[0] > 64 for p in paths)


def test_text_output_grid(demo_output, tmp_path):
    (path,) = make_grid(demo_output, "seed", "label", var="caption", out=tmp_path / "t.png", cell=64)
    assert not _find(Image.open(path), COLORS["red"]), "a caption grid draws text, not the images"


def test_unknown_parameter_lists_known_ones(demo_output):
    with pytest.raises(UsageError, match=r"--x colour: no such parameter .*known parameters: label, strength, seed$"):
        make_grid(demo_output, "colour", "label")
    with pytest.raises(UsageError, match="--where"):
        make_grid(demo_output, "seed", "label", where=["nope=1"])
    with pytest.raises(UsageError, match="no job .* matches label=purple"):
        make_grid(demo_output, "seed", "label", where=["label=purple"])


def test_missing_folder_and_index(tmp_path):
    with pytest.raises(UsageError, match="no such output folder"):
        make_grid(tmp_path / "nope", "a", "b")
    with pytest.raises(UsageError, match="no index.json"):
        make_grid(tmp_path, "a", "b")


def test_grid_cli(demo_output, tmp_path, capsys):
    out = tmp_path / "cli.png"
    assert main(["grid", str(demo_output), "--x", "strength", "--y", "label", "--where", "seed=1", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.stat().st_size > 0
    assert main(["grid", str(demo_output), "--x", "nope", "--y", "label"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "known parameters: label, strength, seed" in err


def test_axes_follow_the_manifest_not_the_finishing_order(demo_output, tmp_path):
    """Two jobs in flight can finish in either order; the manifest copy in the folder fixes the order."""
    (demo_output / "manifest.yaml").write_text(
        "name: demo\nsweep:\n  - workflow: swatch\n    grid: {label: [green, red, blue], strength: [0.5, 0.0]}\n"
        "    seeds: {param: seed, count: 2, base: 1}\n")
    from comfykit_batch.report.index import load_results

    results = load_results(demo_output)
    assert results.values("label") == ["green", "red", "blue"] and results.values("strength") == [0.5, 0.0]
    assert [r["id"] for r in results.records[:3]] == ["j08", "j09", "j06"]  # green 0.5 seed 1, 2; green 0.0 seed 1
    (path,) = make_grid(demo_output, "strength", "label", where={"seed": 1}, cell=64, out=tmp_path / "m.png")
    img = Image.open(path)
    red, green = _find(img, COLORS["red"]), _find(img, COLORS["green"])
    assert max(y for _, y in green) < min(y for _, y in red), "green is the first row now"
