"""Value lists read from files (prompts.txt, a CSV column, cases from CSV or JSON lines), relative to the manifest."""

import json

import pytest

from comfykit_batch.batch.spec.manifest import ManifestError, load_manifest
from comfykit_batch.batch.spec.sweep import Sweep

HEAD = "name: t\nworkflows: [{name: w, source: wf.json}]\n"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prompts.txt").write_text("# prompts, one per line\na lighthouse at dusk\n\n  a fox in the snow  \n#skip\n")
    (tmp_path / "data" / "prompts.csv").write_text("prompt,cfg,note\na cat,5,\"x, y\"\na dog,7.5,\n")
    (tmp_path / "data" / "cases.jsonl").write_text('{"width": 512, "height": 768}\n\n{"width": 768, "height": 512}\n')
    return tmp_path


def load(folder, sweep: str):
    path = folder / "m.yaml"
    path.write_text(HEAD + sweep)
    return load_manifest(path)


def error(folder, sweep: str) -> str:
    with pytest.raises(ManifestError) as exc:
        load(folder, sweep)
    return str(exc.value)


def test_grid_from_text_file_skips_blanks_and_comments(folder):
    m = load(folder, "sweep:\n  grid:\n    prompt: {from: data/prompts.txt}\n    steps: [10, 20]\n")
    assert m.blocks[0]["grid"] == {"prompt": ["a lighthouse at dusk", "a fox in the snow"], "steps": [10, 20]}


def test_csv_column_values_stay_strings_and_cases_come_one_per_row(folder):
    m = load(folder, "sweep:\n  zip:\n    prompt: {from: data/prompts.csv, column: prompt}\n"
                     "    cfg: {from: data/prompts.csv, column: cfg}\n  cases: {from: data/cases.jsonl}\n")
    block = m.blocks[0]
    assert block["zip"] == {"prompt": ["a cat", "a dog"], "cfg": ["5", "7.5"]}
    assert block["cases"] == [{"width": 512, "height": 768}, {"width": 768, "height": 512}]
    assert len(list(Sweep(m.blocks, {"w": "f"}))) == 4


def test_cases_from_csv_leave_empty_cells_out_and_zip_from_csv_takes_every_column(folder):
    m = load(folder, "sweep:\n  - cases: {from: data/prompts.csv}\n  - zip: {from: data/prompts.csv}\n")
    assert m.blocks[0]["cases"] == [{"prompt": "a cat", "cfg": "5", "note": "x, y"}, {"prompt": "a dog", "cfg": "7.5"}]
    assert m.blocks[1]["zip"] == {"prompt": ["a cat", "a dog"], "cfg": ["5", "7.5"], "note": ["x, y", ""]}


def test_params_from_a_file_with_one_value(folder):
    (folder / "data" / "negative.txt").write_text("blurry, low quality\n")
    m = load(folder, "sweep:\n  params: {negative: {from: data/negative.txt}}\n")
    assert m.blocks[0]["params"] == {"negative": "blurry, low quality"}
    assert "sweep.params.p: data/prompts.txt: a fixed value needs a file with one value, it has 2" in error(
        folder, "sweep:\n  params: {p: {from: data/prompts.txt}}\n")


def test_job_ids_depend_on_values_not_on_the_file(folder):
    from_file = load(folder, "sweep:\n  grid: {prompt: {from: data/prompts.txt}}\n")
    inline = load(folder, "sweep:\n  grid: {prompt: [a lighthouse at dusk, a fox in the snow]}\n")
    ids = [[j.id for j in Sweep(m.blocks, {"w": "f"})] for m in (from_file, inline)]
    assert ids[0] == ids[1]
    (folder / "data" / "prompts.txt").write_text("a lighthouse at dusk\na fox in the snow\na third\n")
    extended = [j.id for j in Sweep(load(folder, "sweep:\n  grid: {prompt: {from: data/prompts.txt}}\n").blocks, {"w": "f"})]
    assert extended[:2] == ids[0] and len(extended) == 3


@pytest.mark.parametrize("sweep, expected", [
    ("grid: {p: {from: data/nope.txt}}", "sweep.grid.p: data/nope.txt: cannot read the value file (No such file or directory)"),
    ("grid: {p: {from: data/prompts.csv, column: promt}}",
     "sweep.grid.p: data/prompts.csv line 2: no column 'promt' (did you mean 'prompt'?); columns: prompt, cfg, note"),
    ("grid: {p: {from: data/prompts.csv}}", "sweep.grid.p: data/prompts.csv: say which column holds the values"),
    ("grid: {p: {from: data/bad.csv, column: a}}", "sweep.grid.p: data/bad.csv line 3: expected 2 fields (a, b)"),
    ("cases: {from: data/bad.jsonl}", "sweep.cases: data/bad.jsonl line 2: not valid JSON ("),
    ("cases: {from: data/prompts.txt}", "sweep.cases: data/prompts.txt line 2: a case is a CSV row or a JSON object, got str"),
    ("grid: {p: {from: data/empty.txt}}", "sweep.grid.p: data/empty.txt: no values"),
    ("grid: {p: {from: data/prompts.txt, column: x}}", "sweep.grid.p: data/prompts.txt line 2: column: applies to CSV rows"),
])
def test_file_errors_name_file_line_and_key_path(folder, sweep, expected):
    (folder / "data" / "bad.csv").write_text("a,b\n1,2\n3\n")
    (folder / "data" / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    (folder / "data" / "empty.txt").write_text("# nothing\n\n")
    message = error(folder, "sweep:\n  " + sweep + "\n")
    assert f"m.yaml: {expected}" in message


def test_jsonl_values_keep_their_json_types(folder):
    (folder / "data" / "v.jsonl").write_text(json.dumps({"cfg": 5.5, "ok": True}) + "\n" + json.dumps({"cfg": 7}) + "\n")
    m = load(folder, "sweep:\n  grid: {cfg: {from: data/v.jsonl, column: cfg}}\n")
    assert m.blocks[0]["grid"]["cfg"] == [5.5, 7]
