"""``--shard`` and ``merge`` through the CLI against a fake server: the parts add up to one run's index."""

import json

import pytest

from comfykit_batch.cli import main
from tests.helpers.manifests import write_manifest

SWEEP = {"grid": {"width": list(range(1, 11)), "height": [1, 2]}}  # 20 jobs


@pytest.fixture
def fake(fake_comfy):
    """The shared fake ComfyUI (tests/conftest.py), under the name these tests use."""
    return fake_comfy


def _jobs(index):
    jobs = json.loads(index.read_text())["jobs"]
    assert len(jobs) == len({j["id"] for j in jobs})
    return {j["id"]: j["status"] for j in jobs}


def test_shards_then_merge_equal_one_run_and_the_count_may_change(tmp_path, fake, workflows):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    m = write_manifest(tmp_path / "a", [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m), "-q", "--shard", "0/2"]) == 0
    part0 = _jobs(tmp_path / "a" / "out" / "parts" / "0000-of-0002" / "index.json")
    assert 4 <= len(part0) <= 16
    assert main([str(m), "-q", "--shard", "1/2"]) == 0
    assert main(["merge", str(tmp_path / "a" / "out"), "-q"]) == 0
    merged = _jobs(tmp_path / "a" / "out" / "index.json")
    one = write_manifest(tmp_path / "b", [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(one), "-q"]) == 0
    assert merged == _jobs(tmp_path / "b" / "out" / "index.json") and len(merged) == 20
    before = len(fake.submitted)
    for i in range(3):  # another shard count: every job is already done in some part
        assert main([str(m), "-q", "--shard", f"{i}/3"]) == 0
    assert len(fake.submitted) == before


def test_bad_shard_is_a_one_line_usage_error(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m), "-q", "--shard", "2/2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "0 <= I < N" in err and "\n" not in err
