"""Input sets (``{from: "photos/*.jpg"}``, ``{from: photos/, ext: [...]}``) and ids that follow an input's content."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from comfykit_batch.batch.run.plan import build_plan
from comfykit_batch.batch.spec import inputs
from comfykit_batch.batch.spec.inputs import HashCache, upload_names
from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.batch.store.records import JobRecord, job_record
from comfykit_batch.errors import ManifestError
from comfykit_batch.result import ExecuteResult
from comfykit_batch.workflow import Workflow

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "upload_invert.json"
FP = {"w": "f" * 64}
UPLOADS = {"w": {"image"}}


@pytest.fixture(autouse=True)
def _cache_home(tmp_path, monkeypatch):
    """Digests persist under the user's cache folder: a test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inputs._SHARED.clear()


def _files(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(f"content of {name}".encode())


def _manifest(folder: Path, sweep: dict, name: str = "m.yaml") -> Path:
    data = {"name": "sets", "backends": [{"name": "b", "url": "http://127.0.0.1:9"}],
            "workflows": [{"name": "w", "source": str(WORKFLOW)}], "sweep": sweep}
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _images(folder: Path, sweep_value: dict, **extra: object) -> list[str]:
    m = load_manifest(_manifest(folder, {"grid": {"image": sweep_value}, **extra}))
    return [os.path.relpath(p, folder) for p in m.blocks[0]["grid"]["image"]]


def test_a_glob_gives_the_matching_files_sorted_as_absolute_paths(tmp_path):
    _files(tmp_path, ["photos/b.jpg", "photos/a.jpg", "photos/c.png", "photos/sub/d.jpg"])
    m = load_manifest(_manifest(tmp_path, {"grid": {"image": {"from": "photos/*.jpg"}}}))
    values = m.blocks[0]["grid"]["image"]
    assert values == [str(tmp_path / "photos" / "a.jpg"), str(tmp_path / "photos" / "b.jpg")]
    assert all(os.path.isabs(v) for v in values)


def test_a_folder_gives_its_media_files_and_ext_filters_them(tmp_path):
    _files(tmp_path, ["in/a.png", "in/b.JPG", "in/c.mp4", "in/d.wav", "in/notes.txt", "in/sub/e.png"])
    assert _images(tmp_path, {"from": "in/"}) == ["in/a.png", "in/b.JPG", "in/c.mp4", "in/d.wav"]
    assert _images(tmp_path, {"from": "in/", "ext": ["png", ".jpg"]}) == ["in/a.png", "in/b.JPG"]
    assert _images(tmp_path, {"from": "in", "ext": "txt"}) == ["in/notes.txt"]  # ext: makes an input set


def test_double_star_recurses_and_names_sort_by_their_relative_path(tmp_path):
    _files(tmp_path, ["in/b/1.png", "in/a/2.png", "in/0.png", "in/a/deep/3.png"])
    assert _images(tmp_path, {"from": "in/**/*.png"}) == ["in/0.png", "in/a/2.png", "in/a/deep/3.png", "in/b/1.png"]
    assert _images(tmp_path, {"from": "in/**/"}) == ["in/0.png", "in/a/2.png", "in/a/deep/3.png", "in/b/1.png"]


def test_an_empty_match_is_one_line_naming_the_key_path_and_the_pattern(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ManifestError) as err:
        load_manifest(_manifest(tmp_path, {"grid": {"image": {"from": "photos/*.jpg"}}}))
    text = str(err.value)
    assert "\n" not in text and "sweep.grid.image: photos/*.jpg: no files match" in text
    with pytest.raises(ManifestError, match=r"sweep\.zip\.image: photos/: no files match with extension \.webp"):
        load_manifest(_manifest(tmp_path, {"zip": {"image": {"from": "photos/", "ext": ["webp"]}}}))


def test_value_files_keep_reading_lines_and_a_bare_folder_says_how_to_list_it(tmp_path):
    (tmp_path / "prompts.txt").write_text("a fox\n# skipped\na cat\n")
    _files(tmp_path, ["photos/a.png"])
    m = load_manifest(_manifest(tmp_path, {"grid": {"prompt": {"from": "prompts.txt"}}}))
    assert m.blocks[0]["grid"]["prompt"] == ["a fox", "a cat"] and m.input_sets == []
    with pytest.raises(ManifestError, match=r"photos: a folder: write photos/ to take its files as an input set"):
        load_manifest(_manifest(tmp_path, {"grid": {"image": {"from": "photos"}}}))


def test_params_take_a_one_file_set_zip_pairs_sets_and_cases_refuse_one(tmp_path):
    _files(tmp_path, ["a/1.png", "a/2.png", "b/1.png", "b/2.png", "mask/m.png"])
    m = load_manifest(_manifest(tmp_path, {"params": {"image": {"from": "mask/*.png"}},
                                           "zip": {"image": {"from": "a/"}, "mask": {"from": "b/"}}}))
    block = m.blocks[0]
    assert block["params"]["image"] == str(tmp_path / "mask" / "m.png") and block.size == 2
    with pytest.raises(ManifestError, match=r"a fixed value needs an input set matching one file, it has 2"):
        load_manifest(_manifest(tmp_path, {"params": {"image": {"from": "a/"}}}))
    with pytest.raises(ManifestError, match=r"sweep\.cases: a/: an input set is a list of values, not of cases"):
        load_manifest(_manifest(tmp_path, {"cases": {"from": "a/"}}))


def test_the_dry_run_shows_each_sets_count_and_first_names(tmp_path):
    _files(tmp_path, [f"photos/{c}.png" for c in "abcdef"] + ["masks/m.png"])
    m = load_manifest(_manifest(tmp_path, [{"grid": {"image": {"from": "photos/"}}},
                                           {"params": {"image": {"from": "masks/*.png"}}}]))
    lines = build_plan(m, Sweep(m.blocks, FP, uploads=UPLOADS, base=tmp_path)).lines
    assert "  input set sweep[0].grid.image: photos/ (6 files: photos/a.png, photos/b.png, photos/c.png, ...)" in lines
    assert "  input set sweep[1].params.image: masks/*.png (1 file: masks/m.png)" in lines
    assert lines[0].startswith("sets: 7 jobs")


def _ids(manifest: Path, base: Path) -> list[str]:
    m = load_manifest(manifest)
    return [j.id for j in Sweep(m.blocks, FP, uploads=UPLOADS, base=base)]


def test_ids_follow_content_an_edit_makes_one_new_id_and_a_moved_folder_none(tmp_path):
    _files(tmp_path, [f"one/photos/{c}.png" for c in "abc"])
    first = _ids(_manifest(tmp_path / "one", {"grid": {"image": {"from": "photos/"}, "seed": [1, 2]}}), tmp_path / "one")
    shutil.copytree(tmp_path / "one" / "photos", tmp_path / "elsewhere" / "renamed")
    moved = _manifest(tmp_path, {"grid": {"image": {"from": "elsewhere/renamed/"}, "seed": [1, 2]}})
    assert _ids(moved, tmp_path) == first
    (tmp_path / "elsewhere" / "renamed" / "b.png").write_bytes(b"edited")
    edited = _ids(moved, tmp_path)
    assert [a == b for a, b in zip(first, edited, strict=True)] == [True, True, False, False, True, True]


def test_a_sweep_without_upload_files_keeps_its_ids_and_signature(tmp_path):
    blocks = [{"grid": {"image": ["example.png", "https://example.com/x.png"], "seed": [1, 2]}}]
    plain, uploading = Sweep(blocks, FP), Sweep(blocks, FP, uploads=UPLOADS, base=tmp_path)
    assert [j.id for j in plain] == [j.id for j in uploading] and plain.signature == uploading.signature
    assert all(j.inputs == () for j in uploading)


def test_the_signature_follows_the_files_content(tmp_path):
    _files(tmp_path, ["p/a.png", "p/b.png"])
    m = _manifest(tmp_path, {"grid": {"image": {"from": "p/"}}})
    before = Sweep(load_manifest(m).blocks, FP, uploads=UPLOADS).signature
    assert Sweep(load_manifest(m).blocks, FP, uploads=UPLOADS).signature == before
    (tmp_path / "p" / "a.png").write_bytes(b"new")
    assert Sweep(load_manifest(m).blocks, FP, uploads=UPLOADS).signature != before


def test_two_files_with_one_content_are_one_job(tmp_path):
    (tmp_path / "p").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / "p" / name).write_bytes(b"same" if name != "c.png" else b"other")
    m = load_manifest(_manifest(tmp_path, {"grid": {"image": {"from": "p/"}}}))
    sweep = Sweep(m.blocks, FP, uploads=UPLOADS, fold=True)
    assert [j.params["image"][-5:] for j in sweep] == ["a.png", "c.png"] and sweep.count() == 2


def test_each_file_is_hashed_once_and_a_second_run_hashes_nothing(tmp_path, monkeypatch):
    _files(tmp_path, [f"p/{i}.png" for i in range(5)])
    calls: list[str] = []
    real = inputs.sha256_of
    monkeypatch.setattr(inputs, "sha256_of", lambda path: calls.append(path) or real(path))
    blocks = load_manifest(_manifest(tmp_path, {"grid": {"image": {"from": "p/"}, "seed": [1, 2, 3]}})).blocks
    cache_file = tmp_path / "hashes.sqlite"
    first = [j.id for j in Sweep(blocks, FP, uploads=UPLOADS, hashes=HashCache(cache_file))]
    assert len(calls) == 5 and len(first) == 15
    again = [j.id for j in Sweep(blocks, FP, uploads=UPLOADS, hashes=HashCache(cache_file))]  # another process's cache
    assert again == first and len(calls) == 5
    os.utime(tmp_path / "p" / "3.png", ns=(1, 1))  # a new mtime: hashed again
    assert [j.id for j in Sweep(blocks, FP, uploads=UPLOADS, hashes=HashCache(cache_file))] == first and len(calls) == 6


def test_the_default_cache_lives_in_the_users_cache_folder(tmp_path):
    _files(tmp_path, ["p/a.png"])
    blocks = load_manifest(_manifest(tmp_path, {"grid": {"image": {"from": "p/"}}})).blocks
    list(Sweep(blocks, FP, uploads=UPLOADS))
    assert (tmp_path / "cache" / "comfykit_batch" / "input-hashes.sqlite").is_file()


def test_an_unusable_cache_file_only_costs_hashing_again(tmp_path):
    _files(tmp_path, ["p/a.png"])
    (tmp_path / "blocked").write_text("a file where the cache's folder would be")
    cache = HashCache(tmp_path / "blocked" / "hashes.sqlite")
    size, sha = cache.digest(str(tmp_path / "p" / "a.png"))
    assert size == len(b"content of p/a.png") and len(sha) == 64
    cache.close()


def test_records_name_each_input_with_its_relative_path_size_and_sha256(tmp_path):
    _files(tmp_path, ["p/a.png"])
    blocks = load_manifest(_manifest(tmp_path, {"grid": {"image": {"from": "p/"}, "seed": [7]}})).blocks
    job = next(iter(Sweep(blocks, FP, uploads=UPLOADS, base=tmp_path)))
    rec = job_record(job, "b", 0, ExecuteResult(status="completed"), [], 1.0, 2.0, None).to_dict()
    assert rec["inputs"] == [{"param": "image", "path": "p/a.png", "size": 18, "sha256": inputs.sha256_of(str(tmp_path / "p/a.png"))}]
    assert rec["params"]["image"] == str(tmp_path / "p" / "a.png")
    assert JobRecord.from_dict(rec).inputs == rec["inputs"]
    plain = next(iter(Sweep([{"grid": {"seed": [7]}}], FP, uploads=UPLOADS)))
    assert "inputs" not in job_record(plain, "b", 0, ExecuteResult(status="completed"), [], 1.0, 2.0, None).to_dict()


def test_upload_names_come_from_the_workflows_markers_and_load_nodes():
    assert upload_names({"w": Workflow.from_file(WORKFLOW)}) == {"w": frozenset({"image"})}
