"""Fuzz: a mutated manifest is loaded or refused with one ``ManifestError``, never another exception, never a secret shown."""

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.errors import ComfyKitError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-fuzz-0123456789"
BASE = yaml.safe_load((ROOT / "manifests" / "sweep.yaml").read_text())
BASE["backends"][0]["api_key"] = SECRET
BASE["backends"][0]["url"] = "http://127.0.0.1:1"
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**20), st.floats(allow_nan=False), st.text(max_size=12),
                    st.sampled_from(["${X}", "${X:-3}", "$${Y}", "${", "local", "http://u:p@h:1/?t=1", SECRET, "ws"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)


def paths(node, where=()):
    yield where
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*where, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*where, i))


ALL_PATHS = [p for p in paths(BASE) if p]


def mutate(doc, path, value, action):
    doc = copy.deepcopy(doc)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if action == "replace":
        parent[path[-1]] = value
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[str(value)[:10] or "k"] = value
    return doc


def check(tmp_path, text):
    (tmp_path / "workflows").mkdir(exist_ok=True)
    path = tmp_path / "m.yaml"
    path.write_text(text)
    try:
        load_manifest(path)
    except ComfyKitError as exc:
        message = str(exc)
        assert SECRET not in message and "u:p@" not in message and "?t=1" not in message
        assert message.startswith(str(path))


@FUZZ
@given(path=st.sampled_from(ALL_PATHS), value=values, action=st.sampled_from(["replace", "delete", "add"]))
def test_mutated_documents(tmp_path, monkeypatch, path, value, action):
    monkeypatch.setenv("X", "7")
    check(tmp_path, yaml.safe_dump(mutate(BASE, path, value, action), allow_unicode=True))


TEXT = yaml.safe_dump(BASE)


@FUZZ
@given(at=st.integers(0, len(TEXT)), cut=st.integers(0, 6), insert=st.sampled_from(["", "\t", ":", "{", "[", "- ", "'", "\n  ", "${"]))
def test_mutated_text(tmp_path, at, cut, insert):
    check(tmp_path, TEXT[:at] + insert + TEXT[at + cut:])
