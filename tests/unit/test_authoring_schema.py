"""The editor's view: the schema as VS Code's YAML extension reads it, against manifests as written."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from comfykit_batch.batch.spec.manifest import SCHEMA_PATH, schema, strict_schema
from comfykit_batch.batch.spec.notify import DEFAULT_EVENTS
from comfykit_batch.defaults import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "manifests").glob("*.yaml"))
HEADER = "# yaml-language-server: $schema=../schemas/manifest.schema.json"


def readme_manifests() -> list[tuple[int, str]]:
    """Every ```yaml block of the README (each is a whole manifest), with its line number."""
    text = (ROOT / "README.md").read_text()
    return [(text[:m.start()].count("\n") + 1, m[1]) for m in re.finditer(r"```yaml\n(.*?)```", text, re.S)]


def editor_errors(document: object) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA_PATH.read_text()))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_schema_is_draft_07_and_valid():
    s = schema()
    assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(s)
    assert "$defs" not in json.dumps(s)  # draft-07 spells it definitions


def _properties(node, where=""):
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}.{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}.{key}" if key != "properties" else where)
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}[{i}]")


def test_every_property_has_a_description():
    props = list(_properties(schema()))
    assert len(props) > 50
    missing = [where for where, sub in props if not sub.get("description") and "$ref" not in sub]
    assert missing == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_manifest_validates_in_the_editor_as_written(path):
    assert path.read_text().splitlines()[0] == HEADER
    assert editor_errors(yaml.safe_load(path.read_text())) == []


def test_readme_manifests_validate_in_the_editor_as_written():
    blocks = readme_manifests()
    assert len(blocks) >= 3
    for line, text in blocks:
        assert editor_errors(yaml.safe_load(text)) == [], f"README.md line {line}"


def test_editor_accepts_env_references_in_typed_fields_and_refuses_bad_values():
    doc = {"name": "t", "workflows": [{"name": "w", "source": "w.json"}], "sweep": {},
           "defaults": {"concurrency": "${CONC:-4}", "check_nodes": "${CHECK}", "timeout": "${T:-60}"},
           "backends": [{"url": "${COMFYUI_URL:-local}", "executor": "${EXEC:-ws}"}]}
    assert editor_errors(doc) == []
    doc["defaults"]["concurrency"] = "four"
    doc["backends"][0]["url"] = "localhost:8188"
    assert len(editor_errors(doc)) == 2


def test_strict_schema_has_no_env_alternatives():
    assert "#/definitions/env" in json.dumps(schema())
    assert "#/definitions/env" not in json.dumps(strict_schema())


def test_schema_defaults_are_the_library_defaults():
    props = schema()["properties"]
    d = props["defaults"]["properties"]
    assert {k: v["default"] for k, v in d.items()} == {
        "timeout": DEFAULTS.job_timeout, "retries": DEFAULTS.retries, "executor": DEFAULTS.batch_executor,
        "concurrency": DEFAULTS.concurrency, "check_nodes": DEFAULTS.check_nodes, "save_previews": DEFAULTS.save_previews,
        "backend_down_limit": DEFAULTS.backend_down_limit, "schedule": DEFAULTS.schedule, "model_slots": DEFAULTS.model_slots,
        "stop_after_failures": DEFAULTS.stop_after_failures,
    }
    assert tuple(props["notify"]["properties"]["events"]["default"]) == DEFAULT_EVENTS
    rh = props["backends"]["items"]["then"]["properties"]
    assert rh["url"]["default"] == DEFAULTS.runninghub_url
    assert rh["concurrency"]["default"] == DEFAULTS.runninghub_concurrency
    assert rh["poll_interval"]["default"] == DEFAULTS.runninghub_poll_interval


def test_manifest_module_states_no_default_of_its_own():
    source = (ROOT / "comfykit_batch" / "batch" / "spec" / "manifest.py").read_text()
    for literal in ("600", '"websocket"', '"ws"', "runninghub.ai"):
        assert literal not in source
    assert not re.search(r"\.get\(\"\w+\", \d", source)  # every .get(key, default) takes its default from DEFAULTS
