"""Issue 20, the model and inputs layers: one table of failure kinds, typed RunningHub origins, ``FetchError``
with its cause kept and its secrets scrubbed."""

from __future__ import annotations

import traceback
import typing
from pathlib import Path

import pytest
import requests
import responses

from comfykit_batch.errors import FetchError, WorkflowError, exception_chain, scrub_chain
from comfykit_batch.fetch import fetch_bytes
from comfykit_batch.result import FAILURE_KINDS, FailureKind
from comfykit_batch.sources import remote_workflow, resolve_workflow, runs_on_runninghub
from comfykit_batch.uploads import url_secrets
from comfykit_batch.workflow import RemoteRef, Workflow

NODES = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}, "_meta": {"title": "$width"}}}
SECRET = "SECRETTOKEN123"


def printed(exc: BaseException) -> str:
    """What a log's traceback of ``exc`` shows, its chained causes included."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# -- failure kinds ---------------------------------------------------------------------------------


def test_the_failure_kind_literal_is_the_table_of_kinds() -> None:
    assert typing.get_args(FailureKind) == tuple(FAILURE_KINDS)


def test_the_readmes_table_of_failure_kinds_is_the_packages() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Failure kinds", 1)[1].split("\n#", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    table = {row[0].strip("| `"): (row[1] == "yes", row[2] == "yes", row[3].rstrip(" |")) for row in rows}
    assert table == {k: (v.transient, v.pauses_backend, v.meaning) for k, v in FAILURE_KINDS.items()}


# -- where a workflow runs -------------------------------------------------------------------------


def test_a_runninghub_origin_is_typed_and_read_once(tmp_path: Path) -> None:
    assert resolve_workflow("77").remote == RemoteRef(workflow_id="77")
    assert resolve_workflow("webapp:42").remote == RemoteRef(webapp_id="42")
    assert resolve_workflow("webapp:42").remote.is_app  # type: ignore[union-attr]
    path = tmp_path / "rh.json"
    path.write_text('{"_source": "RunningHub", "_workflow_id": 7, "1": {"class_type": "X", "inputs": {}}}')
    marked = resolve_workflow(path)
    assert marked.remote == RemoteRef(workflow_id="7") and runs_on_runninghub(marked)
    assert Workflow(NODES).remote is None and not runs_on_runninghub(Workflow(NODES))


def test_a_file_naming_a_runninghub_id_without_the_source_key_runs_there() -> None:
    """The RunningHub executor always read the id alone; the kit now routes such a file there too."""
    wf = Workflow({"_workflow_id": "9", **NODES})
    assert wf.remote == RemoteRef(workflow_id="9") and runs_on_runninghub(wf)


def test_fetched_nodes_change_the_origin_not_the_fingerprint() -> None:
    fetched = remote_workflow("7")
    assert fetched.nodes_pending
    fetched.load_nodes(NODES, fetched=True)
    written = Workflow({"_source": "runninghub", "_workflow_id": "7", **NODES})
    assert fetched.remote == RemoteRef(workflow_id="7", fetched=True) and not written.remote.fetched  # type: ignore[union-attr]
    assert fetched.fingerprint() == written.fingerprint() and not fetched.nodes_pending
    assert "_fetched" not in fetched.meta


# -- downloads ---------------------------------------------------------------------------------------


def test_a_failed_download_is_a_fetch_error_whose_cause_never_shows_the_query() -> None:
    url = f"http://files.test/a.png?sig={SECRET}"
    with responses.RequestsMock() as mock:
        mock.get("http://files.test/a.png", status=404)
        with pytest.raises(FetchError) as err:
            fetch_bytes(url)
    assert str(err.value) == "HTTP 404" and err.value.status == 404
    assert isinstance(err.value.__cause__, requests.HTTPError)
    assert err.value.__cause__.response is None, "the response object is dropped from the kept cause"
    assert SECRET not in printed(err.value)


def test_an_unreachable_host_keeps_its_requests_error_as_the_cause() -> None:
    with pytest.raises(FetchError, match="^could not connect$") as err:
        fetch_bytes(f"http://127.0.0.1:9/wf.json?token={SECRET}")  # port 9 (discard): nothing listens
    assert isinstance(err.value.__cause__, requests.ConnectionError)
    assert any(isinstance(link, ConnectionRefusedError) for link in exception_chain(err.value))
    assert SECRET not in printed(err.value)


def test_a_download_over_its_limit_is_a_fetch_error() -> None:
    with responses.RequestsMock() as mock:
        mock.get("http://files.test/big.bin", body=b"x" * 100)
        with pytest.raises(FetchError, match="larger than"):
            fetch_bytes("http://files.test/big.bin", limit=10)


def test_a_workflow_download_chains_the_fetch_error() -> None:
    with pytest.raises(WorkflowError, match="could not connect") as err:
        resolve_workflow(f"http://127.0.0.1:9/wf.json?token={SECRET}")
    assert isinstance(err.value.__cause__, FetchError) and SECRET not in printed(err.value)


# -- scrubbing a chain -------------------------------------------------------------------------------


def test_scrubbing_reaches_every_link_and_drops_what_is_not_text() -> None:
    try:
        try:
            raise OSError(2, f"echo {SECRET}", f"/tmp/{SECRET}")
        except OSError as inner:
            raise requests.ConnectionError(f"outer {SECRET}", request=requests.Request("GET", "http://h.test/")) from inner
    except requests.ConnectionError as exc:
        outer = scrub_chain(exc, lambda text: text.replace(SECRET, "***"))
    assert outer.request is None and SECRET not in printed(outer)
    assert isinstance(outer.__cause__, OSError) and outer.__cause__.errno == 2


def test_the_secret_parts_of_a_url() -> None:
    found = url_secrets(f"https://user:pa55word@h.test/p?sig={SECRET}&x=1#frag-ment")
    assert {f"sig={SECRET}&x=1", SECRET, "pa55word", "frag-ment"} <= set(found)
    assert "1" not in found and "user" in found
