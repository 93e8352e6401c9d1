"""6. Gallery: 10,000 and 1,000,000-job pages in Chromium, how long they take to open and how much memory they hold.

A synthetic output folder of N jobs (sqrt(N) prompts x sqrt(N) cfg values, a seed each) gets its thumbnails,
gallery.html and gallery-data/ from ``write_gallery``. Up to 10,000 jobs each has a small PNG of its own;
above that the folder is written through the store's sqlite layer in one transaction and every job names one
shared PNG (a million PNGs would take the benchmark's time; the page's work is the same). Debian's Chromium,
driven by Playwright, opens the page from file:// with prompt x cfg as the axes (one job per cell). Figures:
the page's and its data's size, the time to write them (thumbnails included) and to rewrite them, the time
from navigation to the first cards rendered and to the ``load`` event, where the opening time went (marks),
the JS heap, the proportional memory (PSS) of every Chromium process, the time a filter takes (one prompt:
change to the next frame painted); then the same memory after scrolling to the bottom (with the number of
thumbnails loaded on the way).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import save, workdir

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--enable-precise-memory-info"]


def make_output(root: Path, n: int) -> Path:
    """An output folder like the store writes: ``files/w/<id>_image.png`` and a one-record-per-line index."""
    from PIL import Image

    side = max(1, round(n ** 0.5))
    (root / "files" / "w").mkdir(parents=True)
    lines = []
    for i in range(n):
        job = f"job{i:06d}"
        rel = f"files/w/{job}_image.png"
        Image.new("RGB", (64, 64), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)).save(root / rel)
        rec = {"id": job, "workflow": "w", "params": {"prompt": f"prompt {i // side:03d}", "cfg": round(1 + (i % side) * 0.1, 1),
                                                      "seed": i}, "seeds": {"seed": i}, "status": "completed",
               "files": [{"var": "image", "kind": "image", "path": rel, "size": (root / rel).stat().st_size, "sha256": f"{i:064x}"}],
               "texts": {}}
        lines.append(json.dumps(rec))
    (root / "index.json").write_text('{"manifest": "bench", "jobs": [\n' + ",\n".join(lines) + "\n]}\n")
    return root


def make_large(root: Path, n: int) -> Path:
    """The same records as ``make_output`` with one shared PNG, as rows of the store's sqlite index (seconds for 1M)."""
    from PIL import Image

    from comfykit_batch.batch.store import index_db

    side = max(1, round(n ** 0.5))
    (root / "files" / "w").mkdir(parents=True)
    rel = "files/w/shared_image.png"
    Image.new("RGB", (64, 64), (200, 120, 40)).save(root / rel)
    size = (root / rel).stat().st_size

    def rows() -> Any:
        for i in range(n):
            yield index_db.row_of({"id": f"job{i:07d}", "seq": i, "workflow": "w", "status": "completed", "texts": {},
                                   "params": {"prompt": f"prompt {i // side:04d}", "cfg": round(1 + (i % side) * 0.1, 1), "seed": i},
                                   "seeds": {"seed": i}, "files": [{"var": "image", "kind": "image", "path": rel, "size": size,
                                                                    "sha256": "ab" * 32}]})

    conn = index_db.connect(root / "index.sqlite")
    index_db.upsert(conn, rows())
    conn.close()
    return root


def chromium_pss_mb(root_pid: int) -> float:
    """Proportional set size (shared pages split between sharers) of every chromium process under ``root_pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            if "chromium" not in os.readlink(f"/proc/{pid}/exe"):
                continue
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                total += sum(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        except OSError:
            continue
    return round(total / 1024, 1)


#: every thumbnail the page has loaded so far (cards off screen leave the page, so counting img elements would not do)
COUNT_LOADS = ("window.__loaded = new Set(); document.addEventListener('load', (e) => { if (e.target.tagName === 'IMG')"
               " window.__loaded.add(e.target.src + '|' + e.target.closest('[data-id]')?.dataset.id); }, true);")
#: one filter (the second prompt) applied: from the change to the next frame painted
FILTER = """async () => {
  const el = document.querySelector('.filter[data-param="prompt"]'), t0 = performance.now();
  el.value = el.tagName === "SELECT" ? "1" : "prompt 0001";
  el.dispatchEvent(new Event("change"));
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r)));
  return performance.now() - t0;
}"""
#: the images now on screen (lazy ones elsewhere are not fetched, by design)
IN_VIEW = ("[...document.querySelectorAll('img')].filter(i => { const r = i.getBoundingClientRect();"
           " return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; })")


def browse(page_path: Path, browser: Any) -> dict[str, Any]:
    """Open the page in a fresh context of ``browser``, then scroll to its end, measuring both times."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.add_init_script(COUNT_LOADS)
    page.goto("about:blank")
    blank = _memory(page, cdp)
    t0 = time.perf_counter()
    page.goto(page_path.as_uri() + "#x=cfg&y=prompt&v=image", wait_until="load", timeout=300_000)
    page.wait_for_selector("body[data-rendered]", state="attached", timeout=300_000)
    wall = time.perf_counter() - t0
    nav = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return {load: n.loadEventEnd, rendered: Number(document.body.dataset.rendered),"
                        " cells: typeof L === 'object' && L ? L.cx.length : document.querySelectorAll('td.cell').length,"
                        " marks: Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, Math.round(m.startTime)])),"
                        " imgs: [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth).length}; })()")
    first = _memory(page, cdp)
    page.wait_for_function(IN_VIEW + ".every(i => i.complete)", timeout=300_000)
    loads = page.evaluate("window.__loaded.size")
    filter_ms = [round(page.evaluate(FILTER)) for _ in range(1)][0]
    page.goto(page_path.as_uri() + "#x=cfg&y=prompt&v=image", wait_until="load", timeout=300_000)  # unfiltered again
    page.goto("about:blank")
    page.goto(page_path.as_uri() + "#x=cfg&y=prompt&v=image", wait_until="load", timeout=300_000)
    page.wait_for_selector("body[data-rendered]", state="attached", timeout=300_000)
    steps = 0
    while page.evaluate("window.scrollY + window.innerHeight < document.body.scrollHeight - 2") and steps < 5000:
        page.mouse.wheel(0, 2000)
        page.wait_for_timeout(20)
        steps += 1
    page.wait_for_function(IN_VIEW + ".every(i => i.complete)", timeout=300_000)
    loaded = page.evaluate("window.__loaded.size")
    scrolled = _memory(page, cdp)
    context.close()
    return {"wall_to_rendered_s": round(wall, 2), "rendered_ms": round(nav["rendered"]), "load_event_ms": round(nav["load"]),
            "marks_ms": nav["marks"], "cells": nav["cells"], "thumbs_loaded_at_open": loads, "filter_ms": filter_ms,
            "blank_page": blank, "after_open": first,
            "after_scrolling_to_end": {**scrolled, "thumbs_loaded": loaded}}


def _memory(page: Any, cdp: Any) -> dict[str, float]:
    page.evaluate("window.gc && window.gc()")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    cdp.send("HeapProfiler.collectGarbage")  # and what is left once garbage (cards scrolled away) is collected
    after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {"js_heap_used_mb": round(metrics["JSHeapUsedSize"] / 1048576, 1), "dom_nodes": int(metrics["Nodes"]),
            "js_heap_after_gc_mb": round(after["JSHeapUsedSize"] / 1048576, 1), "dom_nodes_after_gc": int(after["Nodes"]),
            "chromium_pss_mb": chromium_pss_mb(os.getpid())}


def measure(n: int, chromium: str | None = None, browser: Any = None) -> dict[str, Any]:
    """Figures for an N-job gallery; ``browser`` is a Playwright browser to reuse, else Chromium is launched here."""
    from comfykit_batch.report.gallery import DATA_DIR, write_gallery

    with workdir() as tmp:
        root = (make_output if n <= 10_000 else make_large)(Path(tmp) / "out", n)
        t0 = time.perf_counter()
        page = write_gallery(root)
        first_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_gallery(root)  # thumbnails exist now: the cost of the page alone
        rewrite = time.perf_counter() - t0
        data = sum(f.stat().st_size for f in (root / DATA_DIR).iterdir())
        result = {"jobs": n, "page_mb": round(page.stat().st_size / 1048576, 3), "data_mb": round(data / 1048576, 1),
                  "write_gallery_s": round(first_write, 2),
                  "rewrite_gallery_s": round(rewrite, 2)}
        if browser is not None:
            return {**result, **browse(page, browser)}
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            own = pw.chromium.launch(executable_path=chromium or shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
            try:
                return {**result, **browse(page, own)}
            finally:
                own.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--chromium")
    a = p.parse_args()
    out = {f"{n:,} jobs": measure(n, a.chromium) for n in a.n}
    save("gallery", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
