import pytest

from comfykit_batch.batch.spec.manifest import ManifestError, load_manifest

WF = '{"1": {"class_type": "EmptyImage", "inputs": {"width": 8}, "_meta": {"title": "$width"}}}'


@pytest.fixture
def write(tmp_path):
    (tmp_path / "wf.json").write_text(WF)

    def _write(text: str):
        p = tmp_path / "m.yaml"
        p.write_text(text)
        return p

    return _write


BASE = """
name: t
backends:
  - {name: a, url: "http://127.0.0.1:1"}
workflows:
  - {name: w, source: wf.json}
sweep:
  grid: {width: [1, 2]}
"""


def test_valid_manifest_resolves_paths_and_defaults(write, tmp_path):
    m = load_manifest(write(BASE))
    assert m.workflows[0].source == str(tmp_path / "wf.json")
    assert m.backends[0].concurrency == 2 and m.backends[0].executor == "websocket"
    assert m.output.as_posix() == "output/t" and m.retries == 3 and m.blocks == [{"grid": {"width": [1, 2]}}]


def test_schema_error_names_file_key_path_and_expectation(write):
    p = write(BASE.replace('url: "http://127.0.0.1:1"}', 'url: "http://127.0.0.1:1", concurrency: "two"}'))
    with pytest.raises(ManifestError) as exc:
        load_manifest(p)
    assert str(exc.value) == f"{p}: backends[0].concurrency: expected integer, got str"


def test_unknown_key_is_named_with_a_suggestion(write):
    p = write(BASE + "\nsweeps: {}\n")
    with pytest.raises(ManifestError, match=r"m.yaml: \(top level\): unknown key 'sweeps' \(did you mean 'sweep'\?\); allowed: name, "):
        load_manifest(p)


def test_missing_required_key(write):
    p = write("name: t\nworkflows: [{name: w, source: wf.json}]\n")
    with pytest.raises(ManifestError, match=r"m.yaml: \(top level\): missing required key 'sweep'$"):
        load_manifest(p)


def test_env_interpolation_and_defaults(write, monkeypatch):
    monkeypatch.setenv("MY_URL", "http://10.1.1.1:8188")
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    p = write(BASE.replace('"http://127.0.0.1:1"}', '"${MY_URL}", api_key: "${MY_KEY}", cookies: "${NOPE:-}"}'))
    m = load_manifest(p)
    assert m.backends[0].url == "http://10.1.1.1:8188" and m.backends[0].api_key == "sk-secret-123"
    assert m.backends[0].cookies is None
    assert "sk-secret-123" not in repr(m)


def test_missing_env_var_names_key(write, monkeypatch):
    monkeypatch.delenv("NOT_SET_VAR", raising=False)
    p = write(BASE.replace('"http://127.0.0.1:1"}', '"http://h:1", api_key: "${NOT_SET_VAR}"}'))
    with pytest.raises(ManifestError, match=r"backends\[0\]\.api_key: environment variable NOT_SET_VAR is not set"):
        load_manifest(p)


def test_secret_values_are_not_echoed(write, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    p = write(BASE.replace('{name: a, url: "http://127.0.0.1:1"}', '{name: a, url: "${MY_KEY}"}'))
    with pytest.raises(ManifestError) as exc:
        load_manifest(p)
    assert "backends[0].url" in str(exc.value) and "sk-secret-123" not in str(exc.value)
    p = write(BASE.replace('url: "http://127.0.0.1:1"}', 'url: "http://h:1", api_key: 12}'))
    with pytest.raises(ManifestError, match=r"backends\[0\]\.api_key: expected string, got int"):
        load_manifest(p)


def test_cross_references_are_checked(write):
    with pytest.raises(ManifestError, match=r"m.yaml: sweep\.workflow: no workflow named 'x'"):
        load_manifest(write(BASE.replace("  grid:", "  workflow: x\n  grid:")))
    bad = BASE.replace("source: wf.json}", "source: wf.json, backends: [zz]}")
    with pytest.raises(ManifestError, match=r"workflows\[0\]\.backends\[0\]: no backend named 'zz'"):
        load_manifest(write(bad))


def test_zip_lengths_must_match(write):
    p = write(BASE.replace("grid: {width: [1, 2]}", "zip: {width: [1, 2], height: [1]}"))
    with pytest.raises(ManifestError, match=r"sweep\.zip: lists must have equal lengths \(width=2, height=1\)"):
        load_manifest(p)


def test_yaml_syntax_error_has_line_column_and_caret(write):
    with pytest.raises(ManifestError) as exc:
        load_manifest(write("name: [unclosed\n"))
    first, shown, caret, hint = str(exc.value).splitlines()
    assert first.endswith("m.yaml: line 1, column 7: not valid YAML (expected ',' or ']', but got '<stream end>')")
    assert shown == "    name: [unclosed" and caret == "          ^" and hint.startswith("  hint: a value starting with { or [")


def test_no_backends_means_managed_local(write, monkeypatch):
    monkeypatch.delenv("COMFYUI_URL", raising=False)
    monkeypatch.delenv("COMFYUI_BASE_URL", raising=False)
    m = load_manifest(write(BASE.replace('backends:\n  - {name: a, url: "http://127.0.0.1:1"}\n', "")))
    assert m.backends[0].managed and m.backends[0].name == "local"


def test_shipped_example_is_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    paths = sorted((root / "manifests").glob("*.yaml"))
    assert len(paths) >= 2
    for path in paths:
        m = load_manifest(path)
        assert m.workflows and m.blocks
