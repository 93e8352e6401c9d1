"""Issue 19: ``init`` writes every name and value through YAML's emitter, so any workflow (whatever its parameter
names, defaults, node ids and descriptions hold) gives a manifest that loads with the workflow's own values, and
nothing in the workflow can add a key of its own (``output:``) to the manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.batch.spec.starter import starter_manifest
from comfykit_batch.cli import main
from comfykit_batch.workflow import Workflow

NAMES = ["#x", "'x", "[x", "{x}", "*x", "|x", "%x", "@x", "x\x7f", "on", "null", "1", "&x", "-x", "?x", "x#", '"x', "0x1F",
         "1_000", "Off", "2024-01-02"]
DEFAULTS = ["#x", "'x", "[x", "{x}", "*x", "|x", "%x", "@x", "\x85", "x\x7f", "on", "null", "1", "&x", "a: b", " x ", "",
            "x\u2028output: /elsewhere", "\ufeffx", "\t", 2.5, -0.0, 10**20, True, [1, "\u2029", {"k\n": None}]]


@pytest.fixture(autouse=True)
def no_server_env(monkeypatch):
    monkeypatch.delenv("COMFYUI_URL", raising=False)
    monkeypatch.delenv("COMFYUI_BASE_URL", raising=False)


def _workflow(params: list[tuple[str, object, bool, str]], node_ids: list[str] | None = None) -> dict:
    """One node per parameter: (name, default, required, description)."""
    ids = node_ids or [str(i) for i in range(len(params))]
    return {nid: {"class_type": "X", "inputs": {"v": default},
                  "_meta": {"title": f"${name}.v{'!' if required else ''}" + (f":{about}" if about else "")}}
            for nid, (name, default, required, about) in zip(ids, params, strict=True)}


def _uncommented(text: str) -> str:
    """What a user does next: uncomment the grid."""
    return re.sub(r"^    #   ", "      ", re.sub(r"^    # grid:", "    grid:", text, flags=re.M), flags=re.M)


def _init(tmp_path: Path, nodes: dict) -> Path:
    (tmp_path / "wf.json").write_text(json.dumps(nodes), encoding="utf-8")
    out = tmp_path / "m.yaml"
    assert main(["init", str(tmp_path / "wf.json"), "-o", str(out), "--force"]) == 0
    return out


def test_names_and_defaults_yaml_would_misread_load_back_as_the_workflow_gave_them(tmp_path, capsys):
    params = [(n, d, True, "") for n, d in zip(NAMES, DEFAULTS, strict=False)] + [("z", d, True, "") for d in DEFAULTS[-1:]]
    params += [(f"d{i}", d, False, "") for i, d in enumerate(DEFAULTS)]
    out = _init(tmp_path, _workflow(params))
    m = load_manifest(out)
    assert m.blocks[0]["params"] == {n: d for n, d, req, _ in params if req}
    assert m.output == Path("output") / "wf" and m.name == "wf"
    out.write_text(_uncommented(out.read_text(encoding="utf-8")), encoding="utf-8")
    assert load_manifest(out).blocks[0]["grid"] == {n: [d] for n, d, req, _ in params if not req}


def test_a_node_id_or_a_default_cannot_set_the_output_folder(tmp_path, capsys):
    nodes = _workflow([("a", "x\u2028output: /elsewhere", False, ""), ("b", 1, True, "x\u2028output: /elsewhere\x7f")],
                      node_ids=["7\noutput: /elsewhere #", "8\u2028output: /elsewhere"])
    out = _init(tmp_path, nodes)
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert set(data) == {"name", "workflows", "sweep"} and data["sweep"][0]["params"] == {"b": 1}
    assert load_manifest(out).output == Path("output") / "wf"


def test_a_workflow_file_named_like_a_yaml_value_gives_text_names(tmp_path):
    for stem in ("1", "on", "null", "1.5"):
        text = starter_manifest(Workflow(_workflow([("a", 1, True, "")])), source=f"{stem}.json")
        data = yaml.safe_load(text)
        assert data["name"] == data["workflows"][0]["name"] == data["sweep"][0]["workflow"] == stem


names = st.text(st.characters(blacklist_characters=".!:~,$", blacklist_categories=("Cs",)), min_size=1, max_size=12)
names = names.filter(lambda s: not any(c.isspace() for c in s) and s != "output")
scalars = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
defaults = st.one_of(scalars, st.lists(scalars, min_size=3, max_size=4), st.dictionaries(st.text(max_size=5), scalars, max_size=3))
about = st.text(st.characters(blacklist_characters=",", blacklist_categories=("Cs",)), max_size=20)


@given(st.lists(st.tuples(names, defaults, st.booleans(), about), min_size=1, max_size=6, unique_by=lambda p: p[0]),
       st.lists(st.text(min_size=1, max_size=12).filter(lambda s: not s.startswith("_")), min_size=6, max_size=6, unique=True))
def test_any_workflow_gives_a_manifest_that_loads_with_its_own_values(tmp_path, params, node_ids):
    nodes = _workflow(params, node_ids[:len(params)])
    wf = Workflow(nodes)
    rows = wf.list_params()  # the workflow's own reading of its parameters
    text = starter_manifest(wf, source="wf.json")
    data = yaml.safe_load(text)
    assert set(data) == {"name", "workflows", "sweep"}
    assert data["sweep"][0].get("params", {}) == {r["name"]: r["default"] for r in rows if r["required"]}
    grid = yaml.safe_load(_uncommented(text))["sweep"][0].get("grid", {})
    assert grid == {r["name"]: [r["default"]] for r in rows if not r["required"] and not wf.parameters[r["name"]].is_seed}
    (tmp_path / "wf.json").write_text(json.dumps(nodes), encoding="utf-8")
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    assert load_manifest(tmp_path / "m.yaml").blocks[0].get("params", {}) == data["sweep"][0].get("params", {})
