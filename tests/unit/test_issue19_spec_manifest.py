"""Issue 19: parameter names YAML reads as non-strings, an empty ``report:``, a typo in the sweep beside a report
naming the right parameter, and value files whose lines hold a quoted newline, U+2028 or a form feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.cli import main
from comfykit_batch.errors import ManifestError

ROOT = Path(__file__).resolve().parents[2]
SWATCH = ROOT / "manifests" / "workflows" / "noisy_swatch.json"


@pytest.fixture(autouse=True)
def no_server_env(monkeypatch):
    monkeypatch.delenv("COMFYUI_URL", raising=False)
    monkeypatch.delenv("COMFYUI_BASE_URL", raising=False)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(f"name: t\nworkflows: [{{name: w, source: {json.dumps(str(SWATCH))}}}]\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(("sweep", "where", "said"), [
    ("params: {1: 3}", "sweep[0].params", "parameter name 1 is read by YAML as a number"),
    ("grid: {on: [1]}", "sweep[0].grid", "parameter name True is read by YAML as a boolean"),
    ("grid: {null: [1]}", "sweep[0].grid", "parameter name None is read by YAML as null"),
    ("zip: {2.5: [1], width: [3]}", "sweep[0].zip", "parameter name 2.5 is read by YAML as a number"),
    ("cases: [{width: 1}, {true: 1}]", "sweep[0].cases[1]", "parameter name True is read by YAML as a boolean"),
    ("random: {samples: 2, params: {7: {choice: [1]}}}", "sweep[0].random.params", "parameter name 7 is read"),
    ("grid: {width: [1]}\n    exclude: [{off: 1}]", "sweep[0].exclude[0]", "parameter name False is read"),
])
def test_a_parameter_name_yaml_reads_as_another_type_is_one_line_exit_2(tmp_path, capsys, sweep, where, said):
    path = _write(tmp_path, f"sweep:\n  - workflow: w\n    {sweep}\n")
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {where}: {said}") and ", not text: quote it" in err and err.count("\n") == 1


def test_a_report_where_key_yaml_reads_as_a_number_names_its_key_path(tmp_path):
    path = _write(tmp_path, "sweep: {grid: {width: [1]}}\nreport: {grid: {x: width, y: width, where: {3: 1}}}\n")
    with pytest.raises(ManifestError, match=r"report\.grid\.where: parameter name 3 is read by YAML as a number"):
        load_manifest(path)


def test_an_empty_report_says_what_it_takes(tmp_path):
    with pytest.raises(ManifestError) as exc:
        load_manifest(_write(tmp_path, "sweep: {grid: {width: [1]}}\nreport:\n"))
    assert str(exc.value).endswith("report: expected a mapping with any of the keys grid, gallery, got nothing (the key is empty)")


def test_a_typo_in_the_sweep_is_shown_at_the_sweep_with_the_workflows_name(tmp_path, capsys):
    path = _write(tmp_path, "sweep: {params: {color: 1}, grid: {strenght: [0.1, 0.2], width: [64]}}\n"
                            "report: {grid: {x: strength, y: width}}\n")
    assert main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: sweep (workflow 'w'): unknown parameter 'strenght' (did you mean 'strength'?)")
    assert "strenght'?" not in err and err.count("\n") == 1


def test_a_typo_in_the_report_is_still_shown_at_the_report(tmp_path, capsys):
    path = _write(tmp_path, "sweep: {params: {color: 1}, grid: {strength: [0.1], width: [64]}}\n"
                            "report: {grid: {x: strenght, y: width}}\n")
    assert main([str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"error: {path}: report.grid.x: 'strenght' is not a parameter of the sweep "
                                       "(did you mean 'strength'?); parameters: color, strength, width\n")


@pytest.mark.parametrize(("name", "text", "spec", "values"), [
    ("v.csv", 'label,n\n"first line\nsecond line",1\r\nplain,2\n', {"column": "label"}, ["first line\nsecond line", "plain"]),
    ("v.jsonl", '"a\u2028b"\n["c\u2029d", "e\x85f"]\n', {}, ["a\u2028b", ["c\u2029d", "e\x85f"]]),
    ("v.txt", "a\u2028b\r\nc\x0cd\ne\x85f\x1cg\n", {}, ["a\u2028b", "c\x0cd", "e\x85f\x1cg"]),
])
def test_value_files_split_lines_at_newlines_only(tmp_path, name, text, spec, values):
    (tmp_path / name).write_bytes(text.encode("utf-8"))
    path = _write(tmp_path, f"sweep: {{grid: {{label: {json.dumps({'from': name, **spec})}}}}}\n")
    assert load_manifest(path).blocks[0]["grid"]["label"] == values


def test_csv_cases_keep_a_quoted_newline_and_count_lines_as_the_file_does(tmp_path):
    (tmp_path / "c.csv").write_text('label,width\n"two\nlines",1\n"x",\n', encoding="utf-8")
    path = _write(tmp_path, "sweep: {cases: {from: c.csv}}\n")
    assert load_manifest(path).blocks[0]["cases"] == [{"label": "two\nlines", "width": "1"}, {"label": "x"}]
    (tmp_path / "c.csv").write_text('label,width\n"two\nlines",1,9\n', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"sweep\.cases: c\.csv line 3: expected 2 fields \(label, width\)"):
        load_manifest(path)
