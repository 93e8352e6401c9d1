"""A report that fails for any reason is a warning: every job has landed, so the run keeps its exit code."""

from types import SimpleNamespace

from comfykit_batch.batch.run import session


def test_an_unexpected_error_in_a_report_is_a_warning(tmp_path, monkeypatch):
    def broken(_output):
        raise RuntimeError("a decoder gave up")

    monkeypatch.setattr("comfykit_batch.report.gallery.write_gallery", broken)
    manifest = SimpleNamespace(report=None, output_url=None, output=tmp_path)
    summary = SimpleNamespace(done=3, failed=0, skipped=0, failed_earlier=0, notes=[], index=tmp_path / "index.json")
    said: list[str] = []
    session._write_reports(manifest, summary, said.append)
    assert said == ["warning: the report could not be made: RuntimeError: a decoder gave up"]
