"""Issue 19: merge never drops a part without a word, never hides two parts that disagree, and names
every damaged index (the file and what to do) instead of an internal error."""

import hashlib
import json

import pytest

from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.store import index_db as db
from comfykit_batch.batch.store.merge import merge_output
from comfykit_batch.batch.store.store import COMPLETED, NEW, ResultStore
from comfykit_batch.cli import main
from tests.conftest import WORKFLOWS
from tests.helpers.manifests import write_manifest
from tests.helpers.outputs import state

PER_PART = 12


def rec(job_id, status="completed", files=()):
    return {"id": job_id, "status": status, "files": list(files)}


def write_parts(root, count=3):
    """``count`` closed parts of ``PER_PART`` completed jobs each; the ids of each part's jobs."""
    ids = {}
    for i in range(count):
        s = ResultStore(root, "m", part=Shard(i, count)).open("name: m\n")
        ids[i] = [f"p{i}job{k}" for k in range(PER_PART)]
        for job_id in ids[i]:
            s.record(rec(job_id))
        s.close()
    return ids


def part(root, i, count=3):
    return root / "parts" / f"{i:04d}-of-{count:04d}"


def merged_ids(root):
    return sorted(j["id"] for j in json.loads((root / "index.json").read_text())["jobs"])


def one_line(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in text and "internal error" not in text, text
    return lines[0]


# -- a part whose index is damaged ------------------------------------------------------------
def test_an_emptied_part_index_is_rebuilt_from_its_index_json(tmp_path, capsys):
    ids = write_parts(tmp_path)
    (part(tmp_path, 1) / "index.sqlite").write_bytes(b"")
    assert main(["merge", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "merged 3 part(s): 36 completed" in captured.out
    assert merged_ids(tmp_path) == sorted(sum(ids.values(), []))
    assert "parts/0001-of-0003/index.sqlite: empty file; rebuilt" in captured.err and "12 records" in captured.err
    assert (part(tmp_path, 1) / "index.sqlite.damaged").exists()
    assert main(["merge", str(tmp_path), "-q"]) == 0 and capsys.readouterr().err == "", "rebuilt once, then sound"


def test_a_part_index_that_is_not_a_database_is_rebuilt_from_index_json_and_journal(tmp_path):
    ids = write_parts(tmp_path)
    s = ResultStore(tmp_path, "m", part=Shard(2, 3)).open()
    s.record(rec("late1"))  # killed after this: only its journal has it
    del s
    (part(tmp_path, 2) / "index.sqlite").write_bytes(b"garbage" * 1000)
    result = merge_output(tmp_path)
    assert result.clean and len(result.rebuilt) == 1 and "file is not a database" in result.rebuilt[0]
    assert merged_ids(tmp_path) == sorted(sum(ids.values(), []) + ["late1"])


def test_a_truncated_part_index_is_rebuilt(tmp_path):
    ids = write_parts(tmp_path)
    path = part(tmp_path, 0) / "index.sqlite"
    path.write_bytes(path.read_bytes()[:40000])
    result = merge_output(tmp_path)
    assert result.clean and "database disk image is malformed" in result.rebuilt[0]
    assert merged_ids(tmp_path) == sorted(sum(ids.values(), []))


def _damage_a_data_page(path):
    """Overwrite the last page (records, not the schema on page 1): sqlite opens the file and finds it on reading."""
    data = bytearray(path.read_bytes())
    page = db.PAGE_SIZE
    assert len(data) >= 3 * page
    data[-page:] = b"\xff" * page
    path.write_bytes(bytes(data))


def test_a_part_damaged_inside_is_found_by_the_check_and_rebuilt(tmp_path):
    s = ResultStore(tmp_path, "m", part=Shard(0, 2)).open()
    for k in range(300):
        s.record({"id": f"j{k}", "status": "completed", "files": [], "note": "x" * 400})
    s.close()
    _damage_a_data_page(part(tmp_path, 0, 2) / "index.sqlite")
    result = merge_output(tmp_path)
    assert result.clean and "index.sqlite: fails sqlite's check (Page " in result.rebuilt[0]
    assert "\n" not in result.rebuilt[0]
    assert len(merged_ids(tmp_path)) == 300


def test_a_part_with_nothing_to_rebuild_from_is_named_and_the_others_merged(tmp_path, capsys):
    ids = write_parts(tmp_path)
    (part(tmp_path, 1) / "index.json").unlink()
    (part(tmp_path, 1) / "index.sqlite").write_bytes(b"garbage" * 1000)
    assert main(["merge", str(tmp_path)]) == 3
    captured = capsys.readouterr()
    assert "merged 2 part(s) (1 left out): 24 completed" in captured.out
    err = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "parts/0001-of-0003/index.sqlite: file is not a database" in err[0]
    assert "run shard 1/3 again" in err[0]
    assert merged_ids(tmp_path) == sorted(ids[0] + ids[2])
    assert main(["merge", str(tmp_path), "-q"]) == 3, "said again by every merge until the part is dealt with"
    assert (part(tmp_path, 1) / "index.sqlite").read_bytes().startswith(b"garbage"), "the damaged file stays"


def test_an_unreadable_index_json_is_no_source(tmp_path):
    write_parts(tmp_path, 2)
    (part(tmp_path, 0, 2) / "index.json").write_text('{"jobs": [{"id": ')
    (part(tmp_path, 0, 2) / "index.sqlite").write_bytes(b"")
    result = merge_output(tmp_path)
    assert not result.clean and "empty file" in result.lost[0] and len(merged_ids(tmp_path)) == PER_PART


def test_a_run_leaves_a_damaged_part_out_with_a_note_and_merge_rebuilds_it(tmp_path):
    ids = write_parts(tmp_path)
    (part(tmp_path, 1) / "index.sqlite").write_bytes(b"garbage" * 1000)
    s = ResultStore(tmp_path, "m").open()  # an unsharded run (or a dry run) after the shards
    assert "0001-of-0003/index.sqlite: file is not a database" in s.fold_report.lost[0]
    assert "comfykit-batch merge" in s.fold_report.lost[0]
    assert s.counts() == {"completed": 24} and state(s, ids[1][0]) == NEW
    s.close()
    assert (part(tmp_path, 1) / "index.sqlite").read_bytes().startswith(b"garbage"), "a run repairs nothing"
    assert merge_output(tmp_path).counts == {"completed": 36}


def test_a_shard_refuses_its_own_damaged_index_in_one_line(tmp_path):
    write_parts(tmp_path)
    (part(tmp_path, 1) / "index.sqlite").write_bytes(b"garbage" * 1000)
    with pytest.raises(db.UnreadableIndex, match=r"0001-of-0003/index.sqlite: file is not a database; 'comfykit-batch merge'"):
        ResultStore(tmp_path, "m", part=Shard(1, 3)).open()
    (part(tmp_path, 2) / "index.sqlite").write_bytes(b"")
    with pytest.raises(db.UnreadableIndex, match=r"0002-of-0003/index.sqlite: empty file"):
        ResultStore(tmp_path, "m", part=Shard(2, 3)).open()
    s = ResultStore(tmp_path, "m", part=Shard(0, 3)).open()  # another shard is not stopped by them
    s.close()


def test_a_part_holding_only_its_index_json_is_folded(tmp_path):
    ids = write_parts(tmp_path)
    (part(tmp_path, 2) / "index.sqlite").unlink()
    (part(tmp_path, 2) / "journal.jsonl").unlink()
    result = merge_output(tmp_path)
    assert result.clean and "index.sqlite: missing; rebuilt" in result.rebuilt[0]
    assert merged_ids(tmp_path) == sorted(sum(ids.values(), []))


# -- the folder's own index damaged -------------------------------------------------------------
@pytest.mark.parametrize("content", [b"garbage" * 1000, None], ids=["garbage", "truncated"])
def test_the_folders_own_damaged_index_is_one_line_naming_it_and_what_to_do(tmp_path, capsys, content):
    s = ResultStore(tmp_path, "m").open()
    for k in range(300):
        s.record({"id": f"j{k}", "status": "completed", "files": [], "note": "x" * 400})
    s.close()
    path = tmp_path / "index.sqlite"
    path.write_bytes(content if content is not None else path.read_bytes()[:40000])
    with pytest.raises(db.UnreadableIndex, match=r"index.sqlite: .*; move it \(and its -wal and -shm files\) away"):
        ResultStore(tmp_path, "m").open()
    with pytest.raises(db.UnreadableIndex, match=r"index.sqlite: "):
        ResultStore(tmp_path, "m", part=Shard(0, 2)).open()  # a shard reads the folder's index too
    assert main(["merge", str(tmp_path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {path}: ") and "move it" in line
    path.rename(tmp_path / "index.sqlite.old")  # what the line says to do: rebuilt from index.json
    assert merge_output(tmp_path).counts == {"completed": 300}


def test_the_folders_unreadable_index_json_alone_is_one_line(tmp_path, capsys):
    (tmp_path / "index.json").write_text('{"jobs": [{"id": ')
    assert main(["merge", str(tmp_path)]) == 2
    assert "index.json: unreadable index" in one_line(capsys.readouterr().err)


def test_a_run_and_a_dry_run_on_a_damaged_index_stop_in_one_line(tmp_path, capsys):
    m = write_manifest(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9"}], workflow=WORKFLOWS / "invert.json",
                       sweep={"grid": {"width": [1]}})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "index.sqlite").write_bytes(b"garbage" * 1000)
    for args in ([str(m), "-q"], [str(m), "-q", "--dry-run"], [str(m), "-q", "--shard", "0/2"]):
        assert main(args) == 2, args
        line = one_line(capsys.readouterr().err)
        assert "out/index.sqlite: file is not a database; move it" in line, args


# -- conflicts ---------------------------------------------------------------------------------------
def _file(root, job_id, content):
    """Write the job's output file; its record's ``files``."""
    path = root / "files" / "w" / f"{job_id}_img.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return [{"path": f"files/w/{job_id}_img.png", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}]


def _both_layouts_ran(root, on_disk):
    """Layouts 2 and 3 ran at once: both completed job x with other bytes; ``on_disk``: whose bytes are there (0 or 1)."""
    a_files, b_files = _file(root, "x", b"bytes of layout 2"), _file(root, "x", b"bytes of layout 3")
    a = ResultStore(root, "m", part=Shard(0, 2)).open("name: m\n")
    b = ResultStore(root, "m", part=Shard(1, 3)).open("name: m\n")
    a.record(rec("x", files=a_files))
    a.record(rec("a1"))
    b.record(rec("x", files=b_files))
    b.record(rec("b1"))
    a.close()
    b.close()
    _file(root, "x", b"bytes of layout 2" if on_disk == 0 else b"bytes of layout 3")
    return a_files[0]["sha256"], b_files[0]["sha256"]


@pytest.mark.parametrize("on_disk", [0, 1])
def test_a_job_completed_in_two_parts_with_other_bytes_is_a_conflict_and_the_file_on_disk_wins(tmp_path, capsys, on_disk):
    shas = _both_layouts_ran(tmp_path, on_disk)
    assert main(["merge", str(tmp_path)]) == 3
    captured = capsys.readouterr()
    assert "merged 2 part(s): 3 completed" in captured.out
    line = next(ln for ln in captured.err.splitlines() if ln.startswith("conflict:"))
    names = ["parts/0000-of-0002", "parts/0001-of-0003"]
    assert "job x" in line and all(n in line for n in names) and all(sha in line for sha in shas)
    assert "files/w/x_img.png" in line and f"kept the record of {names[on_disk]}: it matches the file on disk" in line
    x = next(j for j in json.loads((tmp_path / "index.json").read_text())["jobs"] if j["id"] == "x")
    assert x["files"][0]["sha256"] == shas[on_disk] == hashlib.sha256((tmp_path / x["files"][0]["path"]).read_bytes()).hexdigest()
    assert state(ResultStore(tmp_path, "m").open(), "x", verify=True) == COMPLETED


def test_a_conflict_is_reported_by_every_merge_until_a_part_is_moved_away(tmp_path, capsys):
    _both_layouts_ran(tmp_path, 0)
    ResultStore(tmp_path, "m").open().close()  # a run (or a dry run) folds the parts first
    assert main(["merge", str(tmp_path), "-q"]) == 3, "found by the run's fold, reported by the merge"
    assert main(["merge", str(tmp_path), "-q"]) == 3
    (part(tmp_path, 1, 3)).rename(tmp_path / "layout3-part")
    assert main(["merge", str(tmp_path)]) == 0
    assert "conflict" not in capsys.readouterr().err


def test_the_same_bytes_in_two_parts_are_no_conflict(tmp_path):
    files = _file(tmp_path, "x", b"deterministic")
    for shard in (Shard(0, 2), Shard(1, 3)):
        s = ResultStore(tmp_path, "m", part=shard).open()
        s.record(rec("x", files=files))
        s.close()
    assert merge_output(tmp_path).clean


def test_a_part_running_a_job_again_after_a_merge_is_no_conflict(tmp_path):
    s = ResultStore(tmp_path, "m", part=Shard(0, 2)).open()
    s.record(rec("x", files=_file(tmp_path, "x", b"first")))
    s.close()
    assert merge_output(tmp_path).clean
    s = ResultStore(tmp_path, "m", part=Shard(0, 2)).open()  # its file changed: the shard runs it again
    s.record(rec("x", files=_file(tmp_path, "x", b"second")))
    s.close()
    result = merge_output(tmp_path)
    assert result.clean and not result.conflicts
    assert state(ResultStore(tmp_path, "m").open(), "x", verify=True) == COMPLETED


def test_merge_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["merge", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "3 the parts did not merge cleanly" in out and "1 some job failed" in out


# -- a remote folder's messages show its URL as given ---------------------------------------------
def test_a_remote_folders_damaged_part_is_named_by_its_url(tmp_path):
    import fsspec

    url = f"memory://{tmp_path.name}/run1"  # fsspec's in-memory file system: a remote folder without a network
    fs = fsspec.filesystem("memory")
    try:
        s = ResultStore(url, "m", part=Shard(0, 2), local=tmp_path / "node").open()
        s.record(rec("j1"))
        s.close()
        fs.pipe(f"/{tmp_path.name}/run1/parts/0000-of-0002/index.sqlite", b"garbage" * 1000)
        fs.rm(f"/{tmp_path.name}/run1/parts/0000-of-0002/index.json")
        result = merge_output(url, local=tmp_path / "merge")
        assert result.lost[0].startswith(f"{url}/parts/0000-of-0002/index.sqlite: file is not a database")
        with pytest.raises(db.UnreadableIndex, match=rf"^{url}/parts/0000-of-0002/index.sqlite: "):
            ResultStore(url, "m", part=Shard(0, 2), local=tmp_path / "other-node").open()
    finally:
        fs.rm(f"/{tmp_path.name}", recursive=True)
