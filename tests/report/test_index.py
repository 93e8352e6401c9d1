"""Reading an output folder, matching --where values, and export names."""

from __future__ import annotations

import json

import pytest

from comfykit_batch.errors import UsageError
from comfykit_batch.report.index import load_results, parse_where, same_value, select
from comfykit_batch.report.names import Namer, check_template, fields, render

from .conftest import write_output


def test_where_values_are_read_like_yaml():
    assert parse_where(["label=red", "strength=0.2", "color=0xFF0000", "note=a=b"]) == {
        "label": "red", "strength": "0.2", "color": "0xFF0000", "note": "a=b"}
    assert same_value(16711680, "0xFF0000") and same_value(0.2, "0.2") and same_value(1.0, "1")
    assert same_value("0012", "0012") and not same_value(12, "0013")
    assert same_value(True, "true") and not same_value(1, "true")
    with pytest.raises(UsageError, match="expected PARAM=VALUE"):
        parse_where(["label"])


def test_journal_lines_newer_than_the_index_are_shown(demo_output):
    rec = {"id": "j09", "workflow": "swatch", "params": {"label": "green", "strength": 0.5, "seed": 2}, "status": "completed",
           "files": [], "texts": {}}
    (demo_output / "journal.jsonl").write_text(json.dumps(rec) + "\n{cut short")
    results = load_results(demo_output)
    assert len(results.records) == 10 and [r["status"] for r in results.records if r["id"] == "j09"] == ["completed"]
    assert len(select(results, {"label": "green"})) == 4


def test_bad_index_is_one_line(tmp_path):
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(UsageError, match="not a batch index"):
        load_results(tmp_path)


def test_names_are_sanitised_and_unique():
    namer = Namer()
    assert namer.name("../../etc/passwd", ".png") == "etc/passwd.png"
    assert namer.name("etc/passwd", ".png") == "etc/passwd-2.png"
    assert namer.name("etc/PASSWD", ".jpg") == "etc/PASSWD-3.jpg", "unique without the extension and case-insensitively"
    assert namer.name("a photo: «x»", ".PNG!") == "a_photo_x.png"
    assert namer.name("/", "") == "file"


def test_name_fields_and_template_errors(tmp_path):
    rec = {"id": "j1", "workflow": "swatch", "params": {"label": "red", "strength": 0.5}, "seeds": {"seed": 7}}
    f = {"var": "swatch", "path": "files/swatch/j1_swatch.png"}
    values = fields(rec, f, 0, ["label", "strength"])
    assert render("{workflow}/{label}_{seed}_{n}{ext}", values) == "swatch/red_7_0.png"
    assert values["params"] == "label-red_strength-0.5"
    with pytest.raises(UsageError, match=r"unknown field \{colour\}"):
        check_template("{colour}", "--name-template", sorted(values))
    with pytest.raises(UsageError, match="--caption"):
        check_template("{label", "--caption", sorted(values))


def test_a_huge_grid_gets_smaller_cells_or_a_clear_error(tmp_path, monkeypatch):
    from comfykit_batch.report import grid

    recs = [{"id": f"j{a}-{b}", "workflow": "w", "status": "failed", "params": {"a": a, "b": b}} for a in range(20) for b in range(10)]
    out = write_output(tmp_path / "o", recs)
    monkeypatch.setattr(grid, "MAX_PIXELS", 200 * 64 * 64)
    (path,) = grid.make_grid(out, "a", "b", cell=256)
    from PIL import Image

    assert Image.open(path).width < 20 * 100
    monkeypatch.setattr(grid, "MAX_PIXELS", 200 * 10 * 10)
    with pytest.raises(UsageError, match="too big for one image; narrow it with --where or split it with --z"):
        grid.make_grid(out, "a", "b")
