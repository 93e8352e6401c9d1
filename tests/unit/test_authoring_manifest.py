"""Writing a manifest: ${VAR} in typed fields, YAML errors that say where and why, typos, secrets, value files."""

import hashlib

import pytest

from comfykit_batch.batch.spec.manifest import ManifestError, did_you_mean, load_manifest
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.errors import ManifestError as ErrorsManifestError

HEAD = "name: t\nworkflows: [{name: w, source: wf.json}]\n"
SWEEP = "sweep: {grid: {width: [1, 2]}}\n"


@pytest.fixture
def load(tmp_path, monkeypatch):
    (tmp_path / "wf.json").write_text('{"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}')
    for name in ("COMFYUI_URL", "COMFYUI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def _load(text: str):
        path = tmp_path / "m.yaml"
        path.write_text(text)
        return load_manifest(path)

    return _load


def error(load, text: str) -> str:
    with pytest.raises(ManifestError) as exc:
        load(text)
    return str(exc.value)


def test_manifest_error_is_the_errors_module_class():
    assert ManifestError is ErrorsManifestError


# -- ${VAR} -------------------------------------------------------------------------------------
def test_typed_fields_take_env_references_and_are_converted(load, monkeypatch):
    monkeypatch.setenv("CONC", "4")
    monkeypatch.setenv("CHECK", "no")
    monkeypatch.delenv("TIMEOUT", raising=False)
    m = load(HEAD + SWEEP + "defaults:\n  concurrency: ${CONC:-2}\n  timeout: ${TIMEOUT:-12.5}\n  check_nodes: ${CHECK}\n"
             "  executor: ${EXEC:-ws}\nbackends:\n  - url: ${COMFYUI_URL:-local}\n")
    assert (m.backends[0].concurrency, m.timeout, m.check_nodes) == (4, 12.5, False)
    assert m.backends[0].executor == "websocket" and m.backends[0].managed


def test_a_converted_value_that_does_not_fit_names_the_key_and_variable(load, monkeypatch):
    monkeypatch.setenv("CONC", "four")
    assert error(load, HEAD + SWEEP + "defaults: {concurrency: '${CONC}'}\n").endswith(
        "m.yaml: defaults.concurrency: ${CONC} gave 'four'; expected integer")
    monkeypatch.setenv("CONC", "0")
    assert error(load, HEAD + SWEEP + "defaults: {concurrency: '${CONC}'}\n").endswith(
        "defaults.concurrency: expected a number >= 1, got 0 (from ${CONC})")


def test_string_fields_keep_digits_as_text(load, monkeypatch):
    monkeypatch.setenv("KEY", "12345")
    m = load(HEAD + SWEEP + "backends: [{url: 'http://h:1', api_key: '${KEY}'}]\n")
    assert m.backends[0].api_key == "12345"


def test_double_dollar_writes_a_literal(load):
    m = load(HEAD + "sweep: {params: {prompt: 'costs $${PRICE} or ${NOPE:-x}'}}\n")
    assert m.blocks[0]["params"]["prompt"] == "costs ${PRICE} or x"


def test_a_malformed_reference_says_how_to_write_one(load):
    assert "sweep.params.p: '${' must start ${NAME} or ${NAME:-default}; write $${ for a literal ${" in error(
        load, HEAD + "sweep: {params: {p: 'a ${1x}'}}\n")


# -- YAML errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, where, hint", [
    ("name: t\nworkflows:\n\t- {name: w, source: wf.json}\n", "line 3, column 1", "a tab: YAML indents with spaces only"),
    ("name: t\ndefaults:\n  timeout:600\n  retries: 2\n", "line 4, column 10", "a missing space after ':'"),
    ("name: t\nsweep:\n  params:\n    prompt: {a cat} in a hat\n", "line 4, column 21", "a value starting with { or ["),
    ("name: t\ndescription: a cat: sitting\n", "line 2, column 19", "a value containing ': ' must be quoted"),
    ("name: t\ndefaults: {concurrency: ${CONC}}\n", "line 2, column 26", 'a ${VAR} value must be quoted: "${VAR}"'),
])
def test_yaml_errors_show_line_column_caret_and_hint(load, text, where, hint):
    first, shown, caret, hint_line = error(load, text).splitlines()
    assert f"m.yaml: {where}: not valid YAML (" in first
    row, col = (int(x.split()[-1]) for x in where.split(", "))
    assert shown == "    " + text.splitlines()[row - 1].replace("\t", " ")
    assert caret == "    " + " " * (col - 1) + "^"
    assert hint in hint_line


def test_a_secret_on_the_offending_line_is_masked(load):
    message = error(load, "name: t\nbackends:\n  - {url: local, api_key: sk-live-abcdef: x}\n")
    assert "sk-live-abcdef" not in message and "api_key: ***" in message


def test_yaml_boolean_where_text_is_expected_says_quote_it(load):
    assert error(load, HEAD + SWEEP + "description: yes\n").endswith(
        "description: expected string, got bool (YAML reads yes/no/on/off/true/false as booleans: quote it)")


# -- typos ---------------------------------------------------------------------------------------
def test_unknown_keys_get_did_you_mean(load):
    assert "sweep: unknown key 'gird' (did you mean 'grid'?); allowed: workflow, params, grid," in error(
        load, HEAD + "sweep: {gird: {a: [1]}}\n")
    assert "defaults: unknown key 'concurency' (did you mean 'concurrency'?)" in error(
        load, HEAD + SWEEP + "defaults: {concurency: 3}\n")
    assert "sweep.workflow: no workflow named 'ww' (did you mean 'w'?)" in error(load, HEAD + "sweep: {workflow: ww}\n")
    assert did_you_mean("sede", ["seed", "steps"]) == " (did you mean 'seed'?)" and did_you_mean("zzz", ["seed"]) == ""


def test_grid_value_that_is_not_a_list(load):
    assert error(load, HEAD + "sweep: {grid: {a: 5}}\n").endswith("sweep.grid.a: expected a list of values (or {from: FILE}), got int")


# -- secrets -------------------------------------------------------------------------------------------
SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize("backend", [
    "{url: '${SECRET_VAR}'}",
    "{url: 'http://h:1', executor: '${SECRET_VAR}'}",
    "{url: 'http://h:1', concurrency: '${SECRET_VAR}'}",
    "{url: 'http://h:1', api_key: '${SECRET_VAR}', concurrency: x}",
    "{url: 'http://h:1', api_key: 5}",
    "{type: runninghub, api_key: '${SECRET_VAR}', url: 'ftp://x', poll_interval: 0}",
    "{url: 'http://h:1', cookies: {a: '${SECRET_VAR}'}}",
    "{url: 'http://h:1', token: '" + SECRET + "'}",
])
def test_no_message_contains_a_secret(load, monkeypatch, backend):
    monkeypatch.setenv("SECRET_VAR", SECRET)
    message = error(load, HEAD + SWEEP + f"backends: [{backend}]\n")
    assert "backends[0]" in message and SECRET not in message


def test_a_url_is_shown_without_userinfo_or_query(load, monkeypatch):
    monkeypatch.setenv("URL", "http://user:hunter2@gpu1:8188/base?token=abc123")
    message = error(load, HEAD + SWEEP + "backends: [{url: '${URL}'}]\n")
    assert "got 'http://gpu1:8188/base' (from ${URL})" in message
    assert "hunter2" not in message and "abc123" not in message


# -- defaults and the implicit backend -------------------------------------------------------------------
def test_no_backends_uses_comfyui_url_before_the_local_server(load, monkeypatch):
    monkeypatch.setenv("COMFYUI_BASE_URL", "http://10.0.0.9:8188/")
    m = load(HEAD + SWEEP)
    assert (m.backends[0].url, m.backends[0].managed) == ("http://10.0.0.9:8188", False)
    monkeypatch.setenv("COMFYUI_URL", "http://u:secretpw@gpu:1/?k=1")
    message = error(load, HEAD + SWEEP)
    assert "COMFYUI_URL" in message and "secretpw" not in message and "k=1" not in message


def test_backend_down_limit_report_and_executor_alias(load):
    m = load(HEAD + "sweep: {grid: {width: [1, 2]}, params: {cfg: 5}, seeds: {param: seed, count: 2}}\n"
             "defaults: {backend_down_limit: 42, executor: ws}\nbackends: [{url: 'http://h:1', executor: http}]\n"
             "report: {grid: {x: width, y: seed, where: {cfg: 5}}, gallery: false}\n")
    assert m.backend_down_limit == 42.0 and m.backends[0].executor == "http"
    assert m.report == {"grid": {"x": "width", "y": "seed", "where": {"cfg": 5}}, "gallery": False}


def test_shipped_sweep_keeps_its_28_job_ids():
    from pathlib import Path

    from comfykit_batch.workflow import Workflow

    root = Path(__file__).resolve().parents[2] / "manifests"
    m = load_manifest(root / "sweep.yaml")
    ids = [j.id for j in Sweep(m.blocks, {"swatch": Workflow.from_file(root / "workflows" / "noisy_swatch.json").fingerprint()})]
    assert len(ids) == 28
    assert hashlib.sha256(" ".join(ids).encode()).hexdigest() == "d43b1d42232e8a5186391d4f55a526e78d84297a8a2e9653d7d1477153a5a588"


def test_report_axes_must_be_swept_parameters(load):
    assert "report.grid.y: 'sede' is not a parameter of the sweep (did you mean 'seed'?); parameters: width, seed" in error(
        load, HEAD + "sweep: {grid: {width: [1, 2]}, seeds: {param: seed, count: 2}}\nreport: {grid: {x: width, y: sede}}\n")
    assert "report.grid.where.hieght: 'hieght' is not a parameter" in error(
        load, HEAD + SWEEP + "report: {grid: {x: width, y: width, where: {hieght: 1}}}\n")


def test_block_paths_follow_how_the_sweep_is_written(load):
    assert load(HEAD + SWEEP).block_path(0) == "sweep"
    assert load(HEAD + "sweep: [{grid: {a: [1]}}, {grid: {a: [2]}}]\n").block_path(1) == "sweep[1]"


def test_a_key_written_twice_is_refused_with_both_lines(load):
    text = HEAD + "sweep:\n  grid: {a: [1]}\n  seeds: {param: s, count: 1}\n  grid: {b: [2]}\n"
    first, shown, caret, hint = error(load, text).splitlines()
    assert first.endswith("m.yaml: line 6, column 3: not valid YAML (duplicate key 'grid' (first written on line 4))")
    assert shown == "      grid: {b: [2]}" and caret == "      ^" and "a key written twice" in hint
