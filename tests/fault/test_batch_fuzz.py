"""Fuzz the CLI with mutated manifests against a fake server: exit 0, 1 or 2 with at most one error line,
never a traceback, never a file outside the output folder."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfykit_batch.cli import main
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.unit.test_authoring_fuzz import BASE, ROOT, mutate, paths, values

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SWEEP_PATHS = [p for p in paths(BASE["sweep"]) if p]


@pytest.fixture(scope="module")
def server():
    fake = FakeComfyUI().start()
    fake.classes["ImageAddNoise"] = {"image": ["IMAGE"], "seed": ["INT", {"default": 0, "min": 0, "max": 2**64 - 1}],
                                     "strength": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0}]}
    fake.classes["StringConcatenate"] = {"string_a": ["STRING", {}], "string_b": ["STRING", {}], "delimiter": ["STRING", {}]}
    yield fake
    fake.stop()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _document(server: FakeComfyUI, doc: dict, tmp: Path) -> Path:
    shutil.copytree(ROOT / "manifests" / "workflows", tmp / "workflows", dirs_exist_ok=True)
    doc = copy.deepcopy(doc)
    if isinstance(doc.get("backends"), list) and doc["backends"] and isinstance(doc["backends"][0], dict):
        if doc["backends"][0].get("url") in ("http://127.0.0.1:1", "local"):
            doc["backends"][0]["url"] = server.url  # never the managed server: a fuzz run must stay fast
    doc["output"] = str(tmp / "out")
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def _check(capsys, code: int, allowed: tuple[int, ...]) -> None:
    err = capsys.readouterr().err
    assert code in allowed, err
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1


@FUZZ
@given(path=st.sampled_from([p for p in paths(BASE) if p]), value=values, action=st.sampled_from(["replace", "delete", "add"]))
def test_dry_run_of_a_mutated_manifest(server, tmp_path_factory, capsys, monkeypatch, path, value, action):
    monkeypatch.setenv("X", "7")
    tmp = tmp_path_factory.mktemp("dry")
    m = _document(server, mutate(BASE, path, value, action), tmp)
    before = _files(tmp)
    _check(capsys, main([str(m), "--dry-run", "-q"]), (0, 2))
    assert _files(tmp) == before, "a dry run writes nothing"


@FUZZ
@given(path=st.sampled_from(SWEEP_PATHS), value=values, action=st.sampled_from(["replace", "delete", "add"]))
def test_run_of_a_mutated_sweep(server, tmp_path_factory, capsys, monkeypatch, path, value, action):
    monkeypatch.setenv("X", "7")
    tmp = tmp_path_factory.mktemp("run")
    doc = copy.deepcopy(BASE)
    doc["sweep"] = mutate({"s": BASE["sweep"]}, ("s", *path), value, action)["s"]
    doc["defaults"] = {**doc.get("defaults", {}), "timeout": 20, "retries": 0}
    m = _document(server, doc, tmp)
    before = _files(tmp)
    cwd = os.getcwd()
    _check(capsys, main([str(m), "-q", "--limit", "3"]), (0, 1, 2))
    assert os.getcwd() == cwd
    outside = {f for f in _files(tmp) - before if not f.startswith("out")}
    assert not outside, f"written outside the output folder: {sorted(outside)}"


def _from_schema(node: dict, root: dict, depth: int = 0) -> st.SearchStrategy:
    """Values a JSON schema node allows (the common keywords; enough to build whole manifests)."""
    if "$ref" in node:
        return _from_schema(root["definitions"][node["$ref"].rsplit("/", 1)[-1]], root, depth + 1)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            return st.one_of([_from_schema(option, root, depth + 1) for option in node[key]])
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([_from_schema({**node, "type": k}, root, depth) for k in kind])
    if kind == "object" or "properties" in node:
        props = node.get("properties") or {}
        required = [k for k in node.get("required", []) if k in props]
        optional = [k for k in props if k not in required] if depth < 4 else []
        return st.fixed_dictionaries({k: _from_schema(props[k], root, depth + 1) for k in required},
                                     optional={k: _from_schema(props[k], root, depth + 1) for k in optional})
    if kind == "array":
        items = node.get("items") or {}
        return st.lists(_from_schema(items, root, depth + 1), min_size=node.get("minItems", 0), max_size=3)
    if kind == "integer":
        return st.integers(node.get("minimum", -5), 10**6)
    if kind == "number":
        return st.floats(node.get("minimum", -5), 10**6, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        return st.sampled_from([str(e) for e in node.get("examples", [])] or ["x"]) | st.text(max_size=10)
    return values


def _schema_documents() -> st.SearchStrategy:
    from comfykit_batch.batch.spec.manifest import strict_schema

    root = strict_schema()
    return _from_schema(root, root)


@FUZZ
@given(doc=_schema_documents(), path_value=st.tuples(st.integers(0, 50), values))
def test_dry_run_of_documents_built_from_the_schema(server, tmp_path_factory, capsys, doc, path_value):
    """Documents the schema allows (then one random mutation): loaded and planned, or refused in one line."""
    tmp = tmp_path_factory.mktemp("schema")
    where = [p for p in paths(doc) if p]
    if where:
        doc = mutate(doc, where[path_value[0] % len(where)], path_value[1], "replace")
    m = _document(server, doc, tmp)
    before = _files(tmp)
    _check(capsys, main([str(m), "--dry-run", "-q"]), (0, 2))
    assert _files(tmp) == before, "a dry run writes nothing"
