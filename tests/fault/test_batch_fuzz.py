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
