"""Dataset export: Hugging Face folders loaded by `datasets`, kohya captions, CSV/Parquet tables, provenance."""

from __future__ import annotations

import csv
import json
import os
import sys
import types

import pytest

from comfykit_batch.cli import main
from comfykit_batch.errors import UsageError
from comfykit_batch.report.export import export


def _load(builder: str, data_dir, tmp_path, monkeypatch):
    """``datasets.load_dataset`` strictly offline, its cache in the test's temp dir."""
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return datasets.load_dataset(builder, data_dir=str(data_dir), split="train", cache_dir=str(tmp_path / "hf-cache"))


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_imagefolder_loads_with_datasets(demo_output, tmp_path, monkeypatch):
    before = _tree(demo_output)
    to = tmp_path / "ds"
    result = export(demo_output, "imagefolder", to=to)
    assert result.files == 9 and result.index == to / "metadata.jsonl"
    ds = _load("imagefolder", to, tmp_path, monkeypatch)
    assert ds.num_rows == 9
    assert {"image", "label", "strength", "seed", "caption", "job_id", "workflow", "output"} <= set(ds.column_names)
    rows = sorted(zip(ds["job_id"], ds["label"], ds["seed"], ds["caption"], strict=True))
    assert rows[0] == ("j00", "red", 1, "a swatch of red")
    first = ds[0]
    assert first["image"].size == (24, 16) and first["caption"] == f"a swatch of {first['label']}"
    assert "j09" not in list(ds["job_id"]), "the failed job has no image and is not exported"
    assert _tree(demo_output) == before, "originals stay as they were, nothing new beside them"


def test_files_are_hard_links_with_readable_unique_names(demo_output, tmp_path):
    to = tmp_path / "k"
    export(demo_output, "kohya", to=to, caption="a {label} swatch, seed {seed}", name_template="{workflow}/{label}_{seed}_{n}{ext}")
    pngs = sorted(p.name for p in (to / "swatch").glob("*.png"))
    # red and green have two strengths per seed: the second gets a suffix rather than overwriting the first
    assert pngs == sorted(["blue_1_0.png", "blue_2_0.png", "green_1_0.png", "green_1_0-2.png", "green_2_0.png",
                    "red_1_0.png", "red_1_0-2.png", "red_2_0.png", "red_2_0-2.png"])
    assert (to / "swatch" / "red_1_0.txt").read_text() == "a red swatch, seed 1"
    assert (to / "swatch" / "red_1_0-2.txt").read_text() == "a red swatch, seed 1"
    index = json.loads((demo_output / "index.json").read_text())
    original = demo_output / index["jobs"][0]["files"][0]["path"]
    assert os.path.samefile(original, to / "swatch" / "red_1_0.png")
    assert {p.relative_to(tmp_path).parts[0] for p in to.rglob("*")} == {"k"}, "nothing written outside --to"


def test_kohya_caption_from_text_output_and_names_sanitised(demo_output, tmp_path):
    to = tmp_path / "k"
    export(demo_output, "kohya", to=to, caption_var="caption", name_template="../{workflow}/../{label} {seed}?{ext}")
    txts = sorted(to.rglob("*.txt"))
    assert len(txts) == 9 and all(to in p.parents for p in txts)
    assert (to / "swatch" / "red_1.txt").read_text() == "a swatch of red"


def test_audiofolder_loads_with_datasets(audio_output, tmp_path, monkeypatch):
    to = tmp_path / "audio"
    assert export(audio_output, "audiofolder", to=to).files == 2
    meta = [json.loads(line) for line in (to / "metadata.jsonl").read_text().splitlines()]
    assert [(m["tone"], m["caption"]) for m in meta] == [("low", "a low beep"), ("high", "a high beep")]
    assert all((to / m["file_name"]).is_file() for m in meta)
    # `datasets` imports torch + torchcodec even to store an audio file's *path*; stand-ins let its
    # audiofolder builder read our layout and metadata without a multi-GB install (nothing is decoded).
    encoders = types.ModuleType("torchcodec.encoders")
    encoders.AudioEncoder = object  # type: ignore[attr-defined]
    torch = types.ModuleType("torch")
    torch.Tensor, torch.Generator = type("Tensor", (), {}), type("Generator", (), {})  # type: ignore[attr-defined]
    torch.nn = types.SimpleNamespace(Module=type("Module", (), {}))  # type: ignore[attr-defined]
    for name, module in (("torch", torch), ("torchcodec", types.ModuleType("torchcodec")),
                         ("torchcodec.encoders", encoders)):
        monkeypatch.setitem(sys.modules, name, module)
    ds = _load("audiofolder", to, tmp_path, monkeypatch)
    assert ds.num_rows == 2 and {"audio", "tone", "seed", "caption"} <= set(ds.column_names)
    assert sorted(ds["tone"]) == ["high", "low"] and sorted(ds["caption"]) == ["a high beep", "a low beep"]
    paths = ds.with_format("arrow")["audio"].to_pylist()
    assert sorted(os.path.basename(a["path"]) for a in paths) == sorted(os.path.basename(m["file_name"]) for m in meta)


def test_csv_one_row_per_file_with_failures(demo_output, tmp_path, capsys):
    to = tmp_path / "t"
    assert main(["export", str(demo_output), "--format", "csv", "--to", str(to)]) == 0
    assert "10 rows" in capsys.readouterr().out
    rows = list(csv.DictReader((to / "demo.csv").open()))
    assert len(rows) == 10
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == "node_error: out of memory on node 2" and failed[0]["path"] == ""
    assert rows[0]["label"] == "red" and rows[0]["text_caption"] == "a swatch of red" and rows[0]["kind"] == "image"
    prov = json.loads((to / "provenance.json").read_text())
    assert prov["manifest"] == "demo" and prov["counts"]["jobs"] == 10 and prov["counts"]["failed"] == 1
    assert prov["workflows"] == {"swatch": ["ab" * 32]} and prov["parameters"]["strength"] == [0.0, 0.5]


def test_parquet(demo_output, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is the optional parquet extra")
    result = export(demo_output, "parquet", to=tmp_path / "p", status="completed")
    table = pq.read_table(result.index)
    assert table.num_rows == 9 and {"job_id", "label", "strength", "seed", "path", "sha256"} <= set(table.column_names)
    assert sorted(set(table.column("strength").to_pylist())) == [0.0, 0.5]


def test_parquet_without_pyarrow_is_one_line(demo_output, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(UsageError, match=r"needs pyarrow: pip install"):
        export(demo_output, "parquet", to=tmp_path / "p")


def test_bad_input(demo_output, tmp_path):
    with pytest.raises(UsageError, match="kohya needs a caption"):
        export(demo_output, "kohya", to=tmp_path / "k")
    assert not (tmp_path / "k").exists()
    with pytest.raises(UsageError, match=r"unknown field \{colour\}; known fields: .*label"):
        export(demo_output, "imagefolder", to=tmp_path / "i", name_template="{colour}{ext}")
    with pytest.raises(UsageError, match="--caption-var nope: no such text output; text outputs: caption"):
        export(demo_output, "kohya", to=tmp_path / "k", caption_var="nope")
    with pytest.raises(UsageError, match="no audio output"):
        export(demo_output, "audiofolder", to=tmp_path / "a")
    with pytest.raises(UsageError, match="mix the export with the batch's own files"):
        export(demo_output, "imagefolder", to=demo_output / "files" / "x")
    with pytest.raises(UsageError, match="no index.json"):
        export(tmp_path, "csv")
