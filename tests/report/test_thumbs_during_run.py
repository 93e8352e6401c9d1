"""Thumbnails while the batch runs: the lane beside the job slots, and the parallel pass that makes what it missed."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest

from comfykit_batch.report import thumbs
from comfykit_batch.report.thumb_lane import ThumbLane
from comfykit_batch.report.thumbs import SIZE, ensure_thumbs, make_missing, make_thumb, thumb_name

from .conftest import png_bytes


def record(root: Path, i: int, data: bytes | None = None, kind: str = "image") -> dict[str, Any]:
    """A finished job's record with one file written under ``root`` (as the runner leaves it)."""
    rel = f"files/w/job{i:04d}_image.png"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(png_bytes((i % 256, 40, 90)) if data is None else data)
    return {"id": f"job{i:04d}", "status": "completed",
            "files": [{"var": "image", "kind": kind, "path": rel, "sha256": f"{i:064x}"}]}


def thumb_of(root: Path, rec: dict[str, Any]) -> Path:
    return root / thumb_name(rec["files"][0])


def test_lane_makes_thumbnails_where_the_gallery_looks(tmp_path: Path) -> None:
    recs = [record(tmp_path, i) for i in range(6)]
    lane = ThumbLane(tmp_path, workers=2)
    for rec in recs:
        lane.submit(rec)
    lane.close()
    assert lane.made == 6 and all(thumb_of(tmp_path, r).is_file() for r in recs)
    assert ensure_thumbs(tmp_path, recs) == {r["files"][0]["path"]: thumb_name(r["files"][0]) for r in recs}


def test_lane_skips_existing_thumbnails_and_other_kinds(tmp_path: Path) -> None:
    recs = [record(tmp_path, i) for i in range(4)]
    for rec in recs[:3]:
        assert make_thumb(tmp_path / rec["files"][0]["path"], thumb_of(tmp_path, rec))
    before = [thumb_of(tmp_path, r).stat().st_mtime_ns for r in recs[:3]]
    lane = ThumbLane(tmp_path, workers=1)
    for rec in [*recs, record(tmp_path, 9, b"text", kind="text"), {"id": "failed", "files": []}]:
        lane.submit(rec)
    lane.close()
    assert (lane.existed, lane.made, lane.failed) == (3, 1, 0)
    assert [thumb_of(tmp_path, r).stat().st_mtime_ns for r in recs[:3]] == before


def test_lane_never_blocks_when_its_queue_is_full(tmp_path: Path) -> None:
    gate, started = threading.Event(), threading.Event()
    calls: list[Path] = []

    def slow(source: Path, dest: Path, size: int) -> bool:
        calls.append(source)
        started.set()
        assert gate.wait(10)
        return True

    lane = ThumbLane(tmp_path, workers=1, queue_size=3, make=slow)
    recs = [record(tmp_path, i) for i in range(50)]
    lane.submit(recs[0])
    assert started.wait(10)  # the one worker now holds the first record, behind the closed gate
    for rec in recs[1:]:
        lane.submit(rec)  # returns at once: 3 are queued, the rest dropped
    assert (len(calls), lane.dropped) == (1, 46)
    gate.set()
    lane.close()
    assert (len(calls), lane.made, lane.dropped) == (4, 4, 46)
    lane.submit(recs[5])  # after close: ignored
    assert len(calls) == 4


def test_close_gives_up_after_its_timeout(tmp_path: Path) -> None:
    gate = threading.Event()
    lane = ThumbLane(tmp_path, workers=1, queue_size=8, make=lambda s, d, n: gate.wait(10))
    for i in range(5):
        lane.submit(record(tmp_path, i))
    lane.close(timeout=0.05)
    gate.set()
    for t in lane._threads:
        t.join(10)
    assert lane.made <= 1 and lane.made + lane.abandoned == 5


def test_lane_tolerates_unreadable_files_and_raising_makers(tmp_path: Path) -> None:
    good, bad, gone = record(tmp_path, 1), record(tmp_path, 2, b"\x89PNG\r\n\x1a\n garbage"), record(tmp_path, 3)
    (tmp_path / gone["files"][0]["path"]).unlink()
    lane = ThumbLane(tmp_path, workers=2)
    for rec in (bad, gone, good):
        lane.submit(rec)
    lane.close()
    assert (lane.made, lane.failed) == (1, 2) and thumb_of(tmp_path, good).is_file()

    def boom(source: Path, dest: Path, size: int) -> bool:
        raise RuntimeError("bug")

    lane = ThumbLane(tmp_path, workers=1, make=boom)
    lane.submit(record(tmp_path, 4))
    lane.close()
    assert lane.failed == 1


def test_make_missing_in_parallel_makes_all_and_reports_progress(tmp_path: Path) -> None:
    recs = [record(tmp_path, i) for i in range(12)]
    pairs = [(tmp_path / r["files"][0]["path"], thumb_of(tmp_path, r)) for r in recs]
    assert make_thumb(*pairs[0])
    pairs.append(pairs[5])  # one thumbnail two files share: made once
    pairs.append((tmp_path / "missing.png", tmp_path / "thumbs" / "missing.jpg"))
    threads: set[str] = set()

    def spy(source: Path, dest: Path, size: int) -> bool:
        threads.add(threading.current_thread().name)
        return make_thumb(source, dest, size)

    progress: list[tuple[int, int]] = []
    ok = make_missing(pairs, workers=3, on_progress=lambda done, total: progress.append((done, total)), make=spy)
    assert ok == [True] * 13 + [False]
    assert progress == [(i, 12) for i in range(1, 13)]  # 11 missing + the unreadable one; the existing one not counted
    assert len(threads) >= 2 and all(p[1].is_file() for p in pairs[:-1])
    assert make_missing(pairs, workers=2, on_progress=lambda d, t: progress.append((d, t))) == ok  # nothing left but the bad one


def jpeg(size: tuple[int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buf, "JPEG", quality=70)
    return buf.getvalue()


def test_big_jpeg_is_decoded_reduced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import JpegImagePlugin

    source = tmp_path / "big.jpg"
    source.write_bytes(jpeg((4096, 2048)))
    decoded: list[tuple[int, int]] = []
    load = JpegImagePlugin.JpegImageFile.load

    def spy(self: Any) -> Any:
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    monkeypatch.setattr(thumbs, "MAX_DECODE_PIXELS", 1_000_000)  # 8.4 M pixels in full: only a reduced decode fits
    dest = tmp_path / "t.jpg"
    assert make_thumb(source, dest)
    from PIL import Image

    with Image.open(dest) as im:
        assert im.size == (SIZE, SIZE // 2)
        assert im.getpixel((5, SIZE // 2 - 3))[0] > 200 > im.getpixel((5, 3))[0]  # the gradient, not a "too large" card
    assert decoded and max(w * h for w, h in decoded) <= 512 * 256


def test_image_over_the_limit_gets_the_placeholder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "big.png"
    source.write_bytes(png_bytes((200, 10, 10), size=(400, 300)))
    monkeypatch.setattr(thumbs, "MAX_DECODE_PIXELS", 1000)
    lane = ThumbLane(tmp_path, workers=1)
    rec = {"files": [{"kind": "image", "path": "big.png", "sha256": "ab" * 32}]}
    lane.submit(rec)
    lane.close()
    from PIL import Image

    with Image.open(thumb_of(tmp_path, rec)) as im:
        assert lane.made == 1 and im.size == (SIZE, SIZE) and im.getpixel((20, 20))[1] > 200  # the grey card, not the red picture
