"""5. Downloads: large outputs are streamed to disk, so peak memory stays flat.

A fake server serves SaveImage outputs of SIZE bytes (default 50 MB). Child processes download
K of them (a) through the executor (streamed, hashed on the way) and (b) the naive way (the whole
body in memory, then written), and report their peak RSS above a baseline taken just before.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import INVERT, emit, peak_rss_mb, run_child, save, workdir
from bench.farm import Farm


def child(url: str, mode: str, count: int, out: str) -> None:
    import requests

    from comfykit_batch import HttpExecutor, Workflow

    wf = Workflow.from_file(INVERT)
    with HttpExecutor(url) as ex:
        results = [ex.execute(wf, {"width": 10 + i}, timeout=60) for i in range(count)]
        files = [r.files[0] for r in results]
        base = peak_rss_mb()
        t0 = time.perf_counter()
        size = 0
        for i, f in enumerate(files):
            dest = Path(out) / f"{mode}-{i}.png"
            if mode == "streamed":
                size += ex.download(f, dest).size
            else:
                body = requests.get(f.url, timeout=60).content
                dest.write_bytes(body)
                size += len(body)
                del body
        emit({"base_mb": base, "peak_mb": peak_rss_mb(), "wall": time.perf_counter() - t0, "bytes": size})


def measure(size_mb: int, count: int) -> dict:
    farm = Farm(1, 0.0, output_size=size_mb * 1024 * 1024)
    rows = {}
    try:
        for mode in ("streamed", "in memory"):
            with workdir() as tmp:
                r = run_child(["-m", "bench.downloads", "--child", mode, "--url", farm.urls[0], "--count", str(count),
                               "--out", tmp])
            rows[mode] = {"files": count, "file_mb": size_mb, "peak_rss_growth_mb": round(r["peak_mb"] - r["base_mb"], 1),
                          "mb_per_s": round(r["bytes"] / 1048576 / r["wall"], 1)}
    finally:
        farm.finish()
    return {"rows": rows}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child")
    p.add_argument("--url")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--size-mb", type=int, default=50)
    p.add_argument("--out")
    a = p.parse_args()
    if a.child:
        return child(a.url, a.child, a.count, a.out)
    out = measure(a.size_mb, a.count)
    save("downloads", out)
    for mode, r in out["rows"].items():
        print(f"  {mode:10} {r['files']} x {r['file_mb']} MB: peak RSS growth {r['peak_rss_growth_mb']} MB, {r['mb_per_s']} MB/s")


if __name__ == "__main__":
    main()
