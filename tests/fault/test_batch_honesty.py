"""Issue 8 at the batch level: every status and exit code is the truth, and a wrong setup fails in seconds."""

from __future__ import annotations

import json

import pytest

from comfykit_batch.cli import main
from comfykit_batch.cli.run import main as run_main
from comfykit_batch.defaults import Timings
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import write_manifest


@pytest.fixture
def fake(fake_comfy):
    """The shared fake ComfyUI (tests/conftest.py), under the name these tests use."""
    return fake_comfy


def _index(tmp_path):
    return json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]


def _one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_a_wrong_url_fails_before_the_first_job_in_one_line(tmp_path, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "gpu", "url": "http://127.0.0.1:9"}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": list(range(1, 21))}})
    assert main([str(m), "-q"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "backend 'gpu'" in line and "http://127.0.0.1:9" in line and "COMFYUI_URL" in line
    assert not (tmp_path / "out" / "journal.jsonl").exists() or not (tmp_path / "out" / "journal.jsonl").read_text()


def test_failed_earlier_jobs_are_reported_as_such_and_exit_1(tmp_path, fake, capsys):
    wf = tmp_path / "raise.json"
    wf.write_text(json.dumps({"1": {"class_type": "Raise", "inputs": {"message": "x"}, "_meta": {"title": "$message"}}}))
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=wf, sweep={"grid": {"message": ["a", "b"]}})
    assert main([str(m), "-q"]) == 1
    capsys.readouterr()
    assert main([str(m)]) == 1, "failed jobs that remain keep the exit code at 1"
    out = capsys.readouterr().out
    assert "0 completed, 0 failed, 0 completed earlier, 2 failed earlier" in out and "--retry-failed" in out
    assert "skipped (already done)" not in out


def test_transient_failures_run_again_by_default(tmp_path, fake):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=tmp_path / "x.json",
                       sweep={"grid": {"width": [1, 2, 3]}}, defaults={"retries": 0})
    (tmp_path / "x.json").write_text(json.dumps(
        {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
               "_meta": {"title": "$width"}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}))
    fake.submit_failures.extend([503, 503])  # the server is briefly overloaded: two submits fail
    assert main([str(m), "-q"]) == 1
    jobs = _index(tmp_path)
    failed = [j for j in jobs if j["status"] == "failed"]
    assert len(failed) == 2 and all(j["error"]["transient"] for j in failed)
    assert main([str(m), "-q"]) == 0, "transient failures are run again without --retry-failed"
    assert all(j["status"] == "completed" for j in _index(tmp_path))


def test_every_swept_value_is_checked_against_the_server_before_any_job(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [8, 0]}})  # the server says width >= 1
    assert main([str(m), "-q"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "sweep.grid.width" in line and "on backend 'f'" in line
    assert fake.submitted == []


def test_a_lossy_value_is_refused_in_the_dry_run_too(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [8, 3.5]}})
    assert main([str(m), "--dry-run"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "sweep.grid.width" in line and "3.5" in line
    assert fake.submitted == []


def test_a_yaml_boolean_for_a_string_says_quote_it(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [8]}, "params": {"prefix": "x"}})
    m.write_text(m.read_text().replace("prefix: x", "prefix: no"))
    assert main([str(m), "-q"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "sweep.params.prefix" in line and "quote it" in line


def test_each_phase_says_one_line_at_the_default_verbosity(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1, 2]}})
    assert main([str(m)]) == 0
    err = capsys.readouterr().err
    assert "checking nodes of 1 workflow(s) on 1 backend(s)" in err
    assert main([str(m), "-q", "--output", str(tmp_path / "second")]) == 0 and len(fake.submitted) == 4
    assert "checking nodes" not in capsys.readouterr().err, "-q keeps it quiet"


def test_no_backends_uses_comfyui_url_before_the_managed_server(tmp_path, fake, workflows, monkeypatch):
    m = write_manifest(tmp_path, [], workflow=workflows / "invert.json", sweep={"grid": {"width": [1, 2]}})
    m.write_text(m.read_text().replace("backends: []\n", ""))
    monkeypatch.setenv("COMFYUI_URL", fake.url)
    assert main([str(m), "-q"]) == 0
    assert len(fake.submitted) == 2


@pytest.mark.parametrize("case", ["jobs", "only", "output-file", "corrupt-index", "server"])
def test_bad_cli_input_exits_2_in_one_line(tmp_path, fake, workflows, capsys, case):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1]}})
    args = [str(m), "-q"]
    if case == "jobs":
        args += ["--jobs", "0"]
    elif case == "only":
        args += ["--only", "0123456789abcdef0123"]
    elif case == "output-file":
        (tmp_path / "afile").write_text("x")
        args += ["--output", str(tmp_path / "afile")]
    elif case == "corrupt-index":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "index.json").write_text('{"jobs": [{"id": ')
    else:
        args = ["list-params", str(workflows / "invert.json"), "--server", "http://127.0.0.1:9"]
    assert main(args) == 2
    _one_error_line(capsys.readouterr().err)
    assert fake.submitted == []


def test_a_batch_whose_only_backend_stays_down_stops_with_its_index(tmp_path, workflows, capsys):
    dying = FakeComfyUI().start()
    try:
        dying.die_after = 3
        m = write_manifest(tmp_path, [{"name": "d", "url": dying.url}], workflow=workflows / "invert.json",
                           sweep={"grid": {"width": list(range(1, 31))}},
                           defaults={"retries": 5, "backend_down_limit": 1})
        # probed again after 50 ms, not 5 s: it is dropped once down for its limit (1 s)
        assert run_main([str(m), "-q"], timings=Timings(pause_first=0.05, pause_max=0.2, socket_connect_wait=0.2)) == 1
        out = capsys.readouterr().out
        assert "stopped: every backend is down" in out and "not run" in out and "dropped" in out
        jobs = _index(tmp_path)
        # what finished before it died is kept: a job completes once its file came whole (the server dies at the 3rd)
        assert 3 <= sum(1 for j in jobs if j["status"] == "completed") <= dying.views
    finally:
        dying.stop()


def test_a_count_that_must_walk_the_sweep_shows_progress(tmp_path, fake, workflows, capsys, monkeypatch):
    import comfykit_batch.batch.spec.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "ENUMERATION_LIMIT", 10)  # these rules now couple "too many" axes
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": list(range(1, 101)), "height": list(range(1, 101))},
                              "exclude": [{"width": 1}, {"height": 2}]})
    assert main([str(m), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("t: 9,801 jobs") and "counting: " in err and "combinations walked" in err


def test_the_gallery_is_left_to_its_command_past_the_size_limit(tmp_path, fake, workflows, capsys, monkeypatch):
    import comfykit_batch.batch.run.session as session

    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1, 2, 3]}})
    monkeypatch.setattr(session, "GALLERY_MAX_JOBS", 2)
    assert main([str(m)]) == 0
    assert "gallery: not made for 3 jobs" in capsys.readouterr().out
    assert not (tmp_path / "out" / "gallery.html").exists()
    monkeypatch.setattr(session, "GALLERY_MAX_JOBS", 100)
    assert main([str(m), "--output", str(tmp_path / "small")]) == 0
    assert (tmp_path / "small" / "gallery.html").exists()


def test_removed_values_are_counted_exactly_beside_a_transient_rerun(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1, 2, 3, 4]}}, defaults={"retries": 0})
    fake.submit_failures.append(503)  # the first job's submit fails: a transient failure
    assert main([str(m), "-q", "--jobs", "1"]) == 1
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1, 2, 3]}}, defaults={"retries": 0})
    capsys.readouterr()
    assert main([str(m)]) == 0
    out = capsys.readouterr().out
    assert "1 completed, 0 failed, 2 completed earlier" in out
    assert "1 recorded job(s) are no longer in the sweep" in out


def test_an_output_folder_that_cannot_be_made_is_one_line_and_a_dry_run_makes_none(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1]}})
    (tmp_path / "afile").write_text("x")
    assert main([str(m), "-q", "--output", str(tmp_path / "afile" / "below")]) == 2
    _one_error_line(capsys.readouterr().err)
    assert main([str(m), "--dry-run", "--output", str(tmp_path / "planned")]) == 0
    assert not (tmp_path / "planned").exists() and fake.submitted == []
