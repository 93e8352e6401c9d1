"""Issue 19, export: template errors in one line, fields some jobs lack, mixed-type columns, CSV with a bare CR."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from comfykit_batch.cli import main
from comfykit_batch.errors import UsageError
from comfykit_batch.report import names, table
from comfykit_batch.report.export import export
from comfykit_batch.report.index import label_of

from .conftest import add_file, png_bytes, write_output
from .test_export import _load


def _two_blocks(root, tags=(5, "five")) -> Any:
    """Two sweep blocks: the first sets ``label`` and ``tag``, the second only ``tag`` (and no seed)."""
    recs: list[dict[str, Any]] = []
    for i, tag in enumerate(tags):
        params = {"label": "red", "tag": tag, "seed": 7} if i == 0 else {"tag": tag}
        rec: dict[str, Any] = {"id": f"b{i}", "workflow": "w", "status": "completed", "params": params,
                               "seeds": {"seed": 7} if i == 0 else {}, "texts": {"caption": [f"c{i}"]}, "files": []}
        add_file(root, rec, "img", "image", png_bytes((10 * i, 20, 30)), ".png")
        recs.append(rec)
    return write_output(root, recs)


@pytest.mark.parametrize(("option", "template", "field"), [
    ("--name-template", "{label:d}{ext}", "{label:d}"),
    ("--name-template", "{seed:%Y}{ext}", "{seed:%Y}"),
    ("--caption", "a {label:>{seed}x} swatch", "{label:>{seed}x}"),
    ("--caption", "{label[9]}", "{label[9]}"),
])
def test_bad_format_spec_is_one_line(demo_output, tmp_path, capsys, option, template, field):
    fmt = "kohya" if option == "--caption" else "imagefolder"
    argv = ["export", str(demo_output), "--format", fmt, "--to", str(tmp_path / "x"), option, template]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err and "Traceback" not in err
    assert err.startswith(f"error: {option} {template!r}: cannot fill {field} for job j00: "), err
    assert not (tmp_path / "x").exists(), "nothing is written when a template fails on some job"


def test_bad_conversion_and_nested_field_are_checked_first(demo_output, tmp_path):
    with pytest.raises(UsageError, match=r"^--caption 'a \{label!z\}': \{label!z\}: unknown conversion; expected !s, !r or !a$"):
        export(demo_output, "kohya", to=tmp_path / "k", caption="a {label!z}")
    with pytest.raises(UsageError, match=r"^--name-template '\{seed:\{nope\}\}': unknown field \{nope\}"):
        export(demo_output, "imagefolder", to=tmp_path / "i", name_template="{seed:{nope}}")
    assert not (tmp_path / "k").exists() and not (tmp_path / "i").exists()


def test_fields_some_jobs_lack_are_left_empty(tmp_path, capsys):
    out = _two_blocks(tmp_path / "o")
    to = tmp_path / "k"
    # {seed} is known from the first job only (the second block has none): still a known field
    assert main(["export", str(out), "--format", "kohya", "--to", str(to), "--caption", "a {label} swatch {seed:03d}",
                 "--name-template", "{workflow}/{label}_{tag}_{seed:03d}{ext}"]) == 0, capsys.readouterr().err
    assert sorted(p.relative_to(to).as_posix() for p in to.rglob("*.png")) == ["w/five.png", "w/red_5_007.png"]
    assert (to / "w" / "red_5_007.txt").read_text() == "a red swatch 007"
    assert (to / "w" / "five.txt").read_text() == "a  swatch ", "a missing field is empty, its format spec ignored"


def test_render_missing_and_present():
    assert names.render("{a}-{b:>3}-{c!r}", {"a": 1, "c": "x"}) == "1--'x'"
    with pytest.raises(UsageError, match=r"^--caption '\{a:d\}': cannot fill \{a:d\} for job 9: Unknown format code 'd'"):
        names.render("{a:d}", {"a": "red", "id": "9"}, "--caption")


def test_mixed_type_column_loads_with_datasets(tmp_path, monkeypatch):
    out = _two_blocks(tmp_path / "o")
    to = tmp_path / "ds"
    assert export(out, "imagefolder", to=to).files == 2
    ds = _load("imagefolder", to, tmp_path, monkeypatch)  # Arrow refused the column of 5 and "five" (ArrowInvalid)
    meta = [json.loads(line) for line in (to / "metadata.jsonl").read_text().splitlines()]
    assert [m["tag"] for m in meta] == ["5", "five"] and meta[0]["seed"] == 7 and "label" not in meta[1]
    assert sorted(ds["tag"]) == ["5", "five"] and sorted(ds["job_id"]) == ["b0", "b1"]
    assert sorted(ds["seed"], key=str) == [7, None] and sorted(ds["label"], key=str) == [None, "red"]


@pytest.mark.parametrize("tags", [(True, 1), ([1, 2], "x"), ([1], ["a"]), ({"a": 1}, {"a": "x"}), ([1, "a"], [2])])
def test_other_mixed_columns_load_with_datasets(tmp_path, monkeypatch, tags):
    out = _two_blocks(tmp_path / "o", tags)
    to = tmp_path / "ds"
    export(out, "imagefolder", to=to)
    ds = _load("imagefolder", to, tmp_path, monkeypatch)
    assert sorted(ds["tag"]) == sorted(label_of(t) for t in tags)


def test_one_type_per_column_keeps_what_arrow_reads():
    rows: list[dict[str, Any]] = [{"n": 1, "s": "a", "l": [1, 2], "o": {"a": 1}, "z": None, "d": [{"a": 1}]},
                                  {"n": 2.5, "s": None, "l": [], "o": {"b": "x"}, "d": [{"a": None, "b": [1.5]}]}, {"n": None}]
    assert table.one_type_per_column(rows) == rows, "ints with floats, nulls, lists and objects Arrow can type stay as they are"
    paj = pytest.importorskip("pyarrow.json")
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    assert paj.read_json(io.BytesIO(body)).num_rows == 3, "and Arrow reads them as they are"
    assert table.one_type_per_column([{"t": 5}, {"t": "five"}, {}]) == [{"t": "5"}, {"t": "five"}, {}]
    assert table.one_type_per_column([{"t": [{"a": [1]}]}, {"t": [{"a": ["x"]}]}]) == [{"t": '[{"a": [1]}]'}, {"t": '[{"a": ["x"]}]'}]


def test_parquet_mixed_columns_are_text_as_json(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is the optional parquet extra")
    out = _two_blocks(tmp_path / "o", (True, 1))
    result = export(out, "parquet", to=tmp_path / "p")
    assert pq.read_table(result.index).column("tag").to_pylist() == ["true", "1"]


def test_csv_field_with_bare_cr_stays_in_its_row(tmp_path):
    recs: list[dict[str, Any]] = [{"id": f"c{i}", "workflow": "w", "status": "completed", "files": [],
                                   "params": {"prompt": p}, "texts": {"out": [p, "b"]}}
                                  for i, p in enumerate(("one\rtwo", "a\r\nb", "plain", 'q"uote,'))]
    out = write_output(tmp_path / "o", recs)
    path = export(out, "csv", to=tmp_path / "t").index
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["prompt"] for r in rows] == ["one\rtwo", "a\r\nb", "plain", 'q"uote,']
    assert [r["text_out"] for r in rows] == ["one\rtwo\nb", "a\r\nb\nb", "plain\nb", 'q"uote,\nb']
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(path, keep_default_na=False)
    assert list(frame["prompt"]) == ["one\rtwo", "a\r\nb", "plain", 'q"uote,'] and list(frame["job_id"]) == ["c0", "c1", "c2", "c3"]
    pacsv = pytest.importorskip("pyarrow.csv")
    arrow = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True))
    assert arrow.column("prompt").to_pylist() == ["one\rtwo", "a\r\nb", "plain", 'q"uote,']
