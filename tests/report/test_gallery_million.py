"""Issue 24: a gallery of a million jobs opens in Chromium with under 300 MB of JS heap, and filters over all of them.

The folder is made through the store's sqlite layer (the rows a run writes, in one transaction: seconds,
not the minutes a million ``record`` calls take); the page is made by the real ``write_gallery``. Times
are printed, not asserted (a busy machine is slow); ``bench/gallery.py`` records them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from comfykit_batch.batch.store import index_db
from comfykit_batch.report.gallery import CHUNK, DATA_DIR, write_gallery

from .conftest import png_bytes

N = 1_000_000
LABELS = ("red", "green", "blue")
SHARED = "files/w/shared.png"


def record(i: int) -> dict[str, Any]:
    """A job of a 1000 x 1000 x 3 sweep with a seed of its own; every 97th failed; all name one image file."""
    rec: dict[str, Any] = {"id": f"job{i:07d}", "seq": i, "workflow": "w", "status": "completed", "texts": {},
                           "params": {"width": i % 1000, "height": i // 1000, "label": LABELS[i % 3], "seed": i},
                           "files": [{"var": "image", "kind": "image", "path": SHARED, "size": 1, "sha256": "ab" * 32}]}
    if i % 97 == 0:
        rec.update(status="failed", files=[], error={"kind": "node_error", "message": f"out of memory <b>{i}</b>"})
    return rec


def million_folder(root: Path, n: int = N) -> Path:
    root.mkdir(parents=True)
    (root / SHARED).parent.mkdir(parents=True)
    (root / SHARED).write_bytes(png_bytes((200, 30, 30)))
    conn = index_db.connect(root / "index.sqlite")
    index_db.upsert(conn, (index_db.row_of(record(i)) for i in range(n)))
    conn.close()
    return root


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> Path:
    root = million_folder(tmp_path_factory.mktemp("million") / "out")
    write_gallery(root, thumbs=False)  # thumbnails have tests of their own; this one is about the page
    return root


HEAP = """async () => { const s = await new Promise((r) => r(performance.memory)); return s.usedJSHeapSize; }"""
FILTER = """async ([param, value]) => {
  const el = document.querySelector(`.filter[data-param="${param}"]`), t0 = performance.now();
  el.value = value;
  el.dispatchEvent(new Event("change"));
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r)));
  return performance.now() - t0;
}"""


def heap_mb(page) -> float:
    cdp = page.context.new_cdp_session(page)
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20


def test_page_stays_small_and_data_is_chunked(million):
    assert (million / "gallery.html").stat().st_size < 64 * 1024
    chunks = sorted(p.name for p in (million / DATA_DIR).glob("[0-9]*.js"))
    assert len(chunks) == N // CHUNK and chunks[0] == "0000.js" and chunks[-1] == f"{N // CHUNK - 1:04d}.js"


def test_a_million_jobs_open_under_300_mb_and_filter(million, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((million / "gallery.html").resolve().as_uri())
    page.wait_for_selector("body[data-rendered]", state="attached", timeout=120_000)
    opened_ms = float(page.evaluate("Number(document.body.dataset.rendered)"))
    heap = heap_mb(page)
    print(f"\n1,000,000 jobs: first cards after {opened_ms:.0f} ms, JS heap {heap:.0f} MB")
    assert heap < 300, f"JS heap {heap:.0f} MB after opening a million jobs"
    assert page.locator("#summary").inner_text() == f"{N} of {N} jobs shown, {len(range(0, N, 97))} failed"
    assert page.locator(".item").count() < 500 and page.locator("td.cell img").count() > 0
    failed = page.locator(".item.failed").first
    assert "<b>" in failed.inner_text() and failed.locator("b").count() == 0  # a hostile message stays text
    filtered_ms = page.evaluate(FILTER, ["label", "0"])  # red: every third job
    red = range(0, N, 3)
    assert page.locator("#summary").inner_text() == f"{len(red)} of {N} jobs shown, {sum(1 for i in red if i % 97 == 0)} failed"
    typed_ms = page.evaluate(FILTER, ["seed", "999998"])  # a million values: typed, not picked from a list
    page.wait_for_selector("body[data-rendered]", state="attached")
    assert page.locator("#summary").inner_text() == f"0 of {N} jobs shown, 0 failed"  # seed 999998 is blue
    page.evaluate(FILTER, ["label", ""])
    page.wait_for_function("document.querySelectorAll('.item:not(.loading)').length === 1")
    assert "seed = 999998" in page.locator(".item").get_attribute("title")
    print(f"filter over a million: {filtered_ms:.0f} ms (a list), {typed_ms:.0f} ms (typed); heap {heap_mb(page):.0f} MB")
    page.evaluate(FILTER, ["seed", ""])
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # to the end of a table ~77,000 px tall
    page.wait_for_function("document.querySelectorAll('td.cell .item').length > 0 && !document.querySelector('.item.loading')"
                           " && [...document.querySelectorAll('td.cell')].every((c) => c.dataset.y === 'blue')")
    assert page.evaluate("document.getElementsByTagName('*').length") < 5000, "only what is on screen is drawn"
    last = page.locator('td.cell[data-x="0"] .item').last.get_attribute("title")
    assert f"job = job{max(i for i in range(0, N, 1000) if i % 3 == 2):07d}" in last  # the last blue job of width 0
    assert errors == []
    page.close()


def test_rewrite_replaces_every_data_file_and_removes_stale_chunks(tmp_path):
    root = million_folder(tmp_path / "small", n=2 * CHUNK + 5)
    write_gallery(root, thumbs=False)
    data = root / DATA_DIR
    assert sorted(p.name for p in data.iterdir()) == ["0000.js", "0001.js", "0002.js", "columns.js"]
    (data / "0003.js").write_text("galleryChunk('old', 3, []);\n")  # as an earlier gallery of more records left it
    (data / "10000.js").write_text("galleryChunk('old', 10000, []);\n")
    write_gallery(root, thumbs=False)
    assert sorted(p.name for p in data.iterdir()) == ["0000.js", "0001.js", "0002.js", "columns.js"]
    token = (data / "columns.js").read_text().split('"')[1]
    assert f'const TOKEN = "{token}"' in (root / "gallery.html").read_text()
    assert all(p.read_text().startswith(f'galleryChunk("{token}",') for p in data.glob("0*.js"))
