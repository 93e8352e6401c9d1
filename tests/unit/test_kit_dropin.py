"""Code written for the published comfykit runs unchanged: the seed's async calls answer with results.

The side-by-side proof against the published package is ``tests/real/test_comfykit_compat_real.py``;
these pin each rule of the facade with a recording executor.
"""

import asyncio
import json
import logging

import pytest

from comfykit_batch import ComfyKit, ConfigError, ExecuteResult, Failure, ParameterError, WorkflowError

from .test_kit import WF, Recorder, _kit_with_recorders

REQUIRED = {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "$prompt.text!"}}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("COMFYKIT_COMPAT", "RUNNINGHUB_INSTANCE_TYPE", "RUNNINGHUB_API_KEY", "COMFYUI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


class Failing(Recorder):
    """Every run fails with the given kind."""

    def __init__(self, kind):
        super().__init__("comfyui")
        self.kind = kind

    def execute(self, workflow, params=None, **kw):
        super().execute(workflow, params, **kw)
        return ExecuteResult.failed(Failure(self.kind, f"{self.kind} happened"))


def run(coro):
    return asyncio.run(coro)


def test_unknown_parameters_are_ignored_named_and_logged(caplog):
    kit = _kit_with_recorders()
    with caplog.at_level(logging.WARNING, logger="comfykit_batch"):
        r = run(kit.execute(WF, {"width": 8, "seed": 42, "steps": 20}))
    assert r.status == "completed" and r.ignored_params == ["seed", "steps"]
    assert kit._comfyui.calls[0]["params"] == {"width": 8}, "the ignored names never reach the server"
    assert any("seed, steps" in rec.getMessage() and rec.levelno == logging.WARNING for rec in caplog.records)
    assert run(kit.execute(WF, {"width": 8})).ignored_params == []


def test_unknown_parameters_refused_when_asked_or_strict():
    r = run(_kit_with_recorders(unknown_params="error").execute(WF, {"width": 8, "seed": 1}))
    assert r.status == "failed" and r.failure.kind == "invalid" and "unknown parameter 'seed'" in r.msg
    with pytest.raises(ParameterError, match="unknown parameter 'seed'"):
        run(_kit_with_recorders(strict=True).execute(WF, {"width": 8, "seed": 1}))
    with pytest.raises(ParameterError, match="unknown parameter 'seed'"):
        _kit_with_recorders().execute_sync(WF, {"width": 8, "seed": 1})


def test_a_missing_workflow_file_is_a_failed_result_with_the_message(tmp_path):
    kit = _kit_with_recorders()
    r = run(kit.execute(str(tmp_path / "non_existent_workflow.json"), {"prompt": "test"}))
    assert r.status == "failed" and r.failure.kind == "invalid" and r.failure.exception_type == "WorkflowError"
    assert "non_existent_workflow.json" in r.msg and r.msg == r.failure.message
    assert kit._comfyui.calls == [], "nothing was submitted"
    with pytest.raises(WorkflowError):
        kit.execute_sync(str(tmp_path / "non_existent_workflow.json"))
    with pytest.raises(WorkflowError):
        run(ComfyKit(strict=True).execute(str(tmp_path / "non_existent_workflow.json")))


def test_a_missing_required_parameter_is_a_failed_result():
    kit = ComfyKit("http://127.0.0.1:9")  # the real executor checks names before any request; nothing listens
    r = run(kit.execute_json(REQUIRED, {}))
    assert r.status == "failed" and r.failure.kind == "invalid" and "missing required parameter" in r.msg
    assert run(kit.execute_json({"not": "a workflow"})).status == "failed"
    with pytest.raises(ParameterError, match="missing required"):
        kit.execute_json_sync(REQUIRED, {})


def test_compat_status_words_are_opt_in(monkeypatch):
    kit = _kit_with_recorders()
    kit._comfyui = Failing("execution")
    assert run(kit.execute(WF, {"width": 8})).status == "failed", "the default keeps the seed's word"
    kit = _kit_with_recorders(compat="comfykit")
    kit._comfyui = Failing("execution")
    r = run(kit.execute(WF, {"width": 8}))
    assert r.status in ("completed", "error") and r.status == "error" and not r.ok and r.failure.kind == "execution"
    kit._comfyui = Failing("timeout")
    assert run(kit.execute(WF, {"width": 8})).status == "timeout"
    assert run(kit.execute_json({"1": {"inputs": {}}})).status == "error", "bad input too"
    monkeypatch.setenv("COMFYKIT_COMPAT", "comfykit")
    assert ComfyKit().compat == "comfykit"
    monkeypatch.setenv("COMFYKIT_COMPAT", "pydantic")
    with pytest.raises(ConfigError, match="COMFYKIT_COMPAT must be one of comfykit"):
        ComfyKit()


def test_constructor_mistakes_still_raise():
    with pytest.raises(ConfigError, match="unknown_params must be"):
        ComfyKit(unknown_params="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="compat must be"):
        ComfyKit(compat="pydantic")


def test_runninghub_instance_type_is_the_ninth_argument_and_reaches_the_executor(monkeypatch):
    kit = ComfyKit(None, "http", None, None, None, "rk-test", 600, 5, "plus")
    assert kit.runninghub_instance_type == "plus" and kit.runninghub.instance_type == "plus"
    monkeypatch.setenv("RUNNINGHUB_INSTANCE_TYPE", "plus")
    assert ComfyKit(runninghub_api_key="rk").runninghub_instance_type == "plus"
    run(kit.close())


def test_the_comfyui_key_is_never_sent_to_runninghub():
    kit = ComfyKit(api_key="sk-comfy-secret")
    assert kit.runninghub_api_key is None
    r = run(kit.execute("1877265245566922753", {"prompt": "x"}))
    assert r.status == "failed" and r.failure.kind == "config"
    assert "never sent to RunningHub" in r.msg and "sk-comfy-secret" not in r.msg
    with pytest.raises(ConfigError, match="runninghub_api_key"):
        kit.execute_sync("1877265245566922753", {"prompt": "x"})


def test_close_is_awaitable_and_async_with_closes():
    async def main():
        kit = _kit_with_recorders()
        await kit.execute(WF, {"width": 8})
        assert kit._pool is not None
        await kit.close()
        assert kit._pool is None and kit._comfyui is None
        async with ComfyKit() as k2:
            await k2.execute(WF, {"width": 8, "bogus": 1})  # nothing listens: a failed result, not an exception
        assert k2._pool is None

    run(main())


def test_model_dump_has_comfykits_fields_in_its_order_and_extras_on_request():
    r = ExecuteResult(status="completed", prompt_id="p", duration=1.5, images=["u"], images_by_var={"image": ["u"]},
                      texts=["ünï"], seeds={"seed": 3})
    assert tuple(r.model_dump()) == ExecuteResult.SEED_FIELDS
    dumped = r.model_dump(extras=True)
    assert dumped["seeds"] == {"seed": 3} and dumped["failure"] is None and tuple(dumped)[:13] == ExecuteResult.SEED_FIELDS
    assert json.loads(r.model_dump_json()) == r.model_dump() and "ünï" in r.model_dump_json()
    assert r.model_dump(include={"status", "msg"}, exclude_none=True) == {"status": "completed"}
    dumped["images"].append("changed")
    assert r.images == ["u"], "a dump never aliases the result"


def test_model_validate_round_trips_and_coerces():
    failed = ExecuteResult.failed(Failure("execution", "boom", node_id="7"), prompt_id="p")
    again = ExecuteResult.model_validate_json(failed.model_dump_json(extras=True))
    assert again == failed
    coerced = ExecuteResult.model_validate({"status": "completed", "duration": "2", "images": ("a",), "extra": 1})
    assert coerced.duration == 2.0 and coerced.images == ["a"]
    with pytest.raises(ValueError, match="status"):
        ExecuteResult.model_validate({"images": []})
    with pytest.raises(ValueError, match="ExecuteResult.duration"):
        ExecuteResult.model_validate({"status": "completed", "duration": "soon"})


def test_an_explicit_argument_beats_its_environment_variable_even_at_the_default_value(monkeypatch):
    """comfykit lets RUNNINGHUB_RETRY_COUNT override an explicit ``runninghub_retry_count=3``; here the argument wins."""
    monkeypatch.setenv("RUNNINGHUB_RETRY_COUNT", "7")
    monkeypatch.setenv("RUNNINGHUB_TIMEOUT", "9")
    kit = ComfyKit(runninghub_retry_count=3, runninghub_timeout=300)
    assert (kit.runninghub_retry_count, kit.runninghub_timeout) == (3, 300)
    assert (ComfyKit().runninghub_retry_count, ComfyKit().runninghub_timeout) == (7, 9)


def test_trailing_slashes_are_stripped_from_both_urls():
    kit = ComfyKit("http://gpu.test:8188/", runninghub_url="https://rh.test/")
    assert (kit.comfyui_url, kit.runninghub_url) == ("http://gpu.test:8188", "https://rh.test")
