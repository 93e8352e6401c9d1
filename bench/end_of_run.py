"""End of run: the time from the last job's end to the exit, with thumbnails made at the end or while jobs run.

Target (issue 24): at most 2 s for 10,000 images of 1024x1024 when jobs take 0.5 s or more on 2 backends;
and the CPU spent on thumbnails per image, with the share of it that overlapped job time.

What is real: N PNGs of 1024x1024 like ComfyUI saves (noise over a gradient, zlib level 4, ~2.5 MB, each
with its own ``prompt`` text chunk, so each has its own content and thumbnail), in an output folder with
an index, in the page cache as a runner that has just written them leaves them; the thumbnails, the
lane's threads and ``write_gallery`` are the library's own.

What is simulated: the runner and the backends. Records reach ``ThumbLane.submit`` at the rate 2 backends
at 0.5 s a job finish them (4 a second), from one feeder thread; the download's own CPU does not compete.
At that rate 10,000 images take 42 minutes, so the default is 200 images (50 s) and the 10,000 figures
are extrapolated, and printed as such: the serial end-of-run pass grows with the images (linear), the
lane's tail does not (it keeps up: its backlog at the last job is at most a few thumbnails) except for
the page write, scaled linearly from the N-job page.

Three end-of-run figures, the thumbnails missing each time: today (every thumbnail at the end, one after
another, then the page), the ``gallery`` pass (the same on every core), and with the lane (last submit ->
``close()`` + the page). Pixel bases are cached and reused between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import ROOT, cpu_seconds, save, set_aside, workdir

CACHE = ROOT / ".cache" / "bench-end-of-run"
BASES = 8  # distinct pixel contents; every file still differs by its text chunk
TARGET_IMAGES = 10_000
TARGET_S = 2.0


def base_png(side: int, k: int) -> bytes:
    """Pixel base ``k`` (cached): noise over a gradient, compressed as ComfyUI saves (zlib level 4)."""
    from PIL import Image

    path = CACHE / f"base_{side}_{k}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        grad = Image.linear_gradient("L").resize((side, side)).convert("RGB")
        noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        Image.blend(grad, noise, 0.17).save(path.with_suffix(".part"), "PNG", compress_level=4)
        os.replace(path.with_suffix(".part"), path)
    return path.read_bytes()


def with_prompt(png: bytes, text: str) -> bytes:
    """The PNG with a ``prompt`` tEXt chunk after its header (as ComfyUI writes the graph): new bytes, same pixels."""
    body = b"prompt\0" + text.encode()
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:33] + chunk + png[33:]  # signature (8) + IHDR (25)


def make_output(root: Path, n: int, side: int) -> list[dict[str, Any]]:
    """An output folder of N one-image jobs (``files/w/<id>_image.png`` and index.json); returns the records."""
    bases = [base_png(side, k) for k in range(BASES)]
    (root / "files" / "w").mkdir(parents=True)
    records = []
    for i in range(n):
        rel = f"files/w/job{i:06d}_image.png"
        data = with_prompt(bases[i % BASES], json.dumps({"seed": i}))
        (root / rel).write_bytes(data)
        records.append({"id": f"job{i:06d}", "workflow": "w", "params": {"seed": i}, "seeds": {"seed": i}, "status": "completed",
                        "files": [{"var": "image", "kind": "image", "path": rel, "size": len(data), "sha256": f"{i:064x}"}]})
    (root / "index.json").write_text('{"manifest": "bench", "jobs": [\n' + ",\n".join(map(json.dumps, records)) + "\n]}\n")
    return records


def today(root: Path, records: list[dict[str, Any]]) -> dict[str, float]:
    """Every thumbnail at the end, one after another (as before the lane), then the page."""
    from comfykit_batch.report.gallery import write_gallery
    from comfykit_batch.report.thumbs import ensure_thumbs

    c0, t0 = cpu_seconds(), time.perf_counter()
    ensure_thumbs(root, records, workers=1)
    thumbs_s, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    write_gallery(root)
    return {"end_s": time.perf_counter() - t0, "thumbs_s": thumbs_s, "cpu_ms_per_image": cpu / len(records) * 1000}


def gallery_pass(root: Path) -> dict[str, float]:
    """``comfykit-batch gallery``'s work with every thumbnail missing: made on every core, then the page."""
    from comfykit_batch.report.gallery import write_gallery

    t0 = time.perf_counter()
    write_gallery(root)
    end = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_gallery(root)  # every thumbnail there now: the page alone
    return {"end_s": end, "page_s": time.perf_counter() - t0}


def with_lane(root: Path, records: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """Records fed to a ``ThumbLane`` at ``rate`` a second; the end of run is last submit -> ``close()`` + the page."""
    from comfykit_batch.report.gallery import write_gallery
    from comfykit_batch.report.thumb_lane import ThumbLane

    lane = ThumbLane(root)
    c0 = cpu_seconds()
    marks = feed(lane, records, rate)
    t_last, c_last = marks["t"], marks["cpu"]
    lane.close()
    t_closed, c_closed = time.perf_counter(), cpu_seconds()
    write_gallery(root)
    total_cpu = c_closed - c0
    return {"end_s": time.perf_counter() - t_last, "close_wait_s": t_closed - t_last, "made": lane.made, "dropped": lane.dropped,
            "failed": lane.failed, "workers": len(lane._threads), "cpu_ms_per_image": total_cpu / len(records) * 1000,
            "overlap_share": (c_last - c0) / total_cpu if total_cpu > 0 else 1.0}


def feed(lane: Any, records: list[dict[str, Any]], rate: float) -> Mapping[str, float]:
    """Submit record i when job i would end (``(i + 1) / rate`` s), as the runner's loop would; the last submit's time and CPU."""
    start = time.perf_counter()
    for i, rec in enumerate(records):
        time.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
        lane.submit(rec)
    return {"t": time.perf_counter(), "cpu": cpu_seconds()}


def measure(n: int = 200, side: int = 1024, backends: int = 2, job_s: float = 0.5) -> dict[str, Any]:
    """The three end-of-run figures for N images, and their extrapolation to 10,000."""
    rate = backends / job_s
    with workdir() as tmp:
        root, keep = Path(tmp) / "out", Path(tmp) / "old"
        records = make_output(root, n, side)
        serial = today(root, records)
        set_aside(root / "thumbs", keep)
        parallel = gallery_pass(root)
        set_aside(root / "thumbs", keep)
        lane = with_lane(root, records, rate)
    scale = TARGET_IMAGES / n
    return {"images": n, "side": side, "backends": backends, "job_s": job_s, "submits_per_s": rate,
            "today": rounded(serial), "gallery_pass": rounded(parallel), "lane": rounded(lane),
            "extrapolated_10k": {"today_end_s": round(serial["end_s"] * scale, 1),
                                 "gallery_pass_end_s": round(parallel["end_s"] * scale, 1),
                                 "lane_end_s": round(lane["close_wait_s"] + parallel["page_s"] * scale, 2),
                                 "target_s": TARGET_S}}


def rounded(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def report(out: Mapping[str, Any]) -> str:
    """The figures as lines: today's beside the target, and the lane's CPU per image with its overlap."""
    x, lane = out["extrapolated_10k"], out["lane"]
    return "\n".join([
        f"End of run ({out['images']} images of {out['side']}x{out['side']}, records every {1 / out['submits_per_s']:.2f} s = "
        f"{out['backends']} backends at {out['job_s']} s/job, simulated):",
        f"  today (thumbnails at the end, serial): {out['today']['end_s']} s; gallery pass on every core: "
        f"{out['gallery_pass']['end_s']} s; with the lane: {lane['end_s']} s (close {lane['close_wait_s']} s + page)",
        f"  10,000 images (extrapolated): today {x['today_end_s']} s, gallery pass {x['gallery_pass_end_s']} s, "
        f"lane {x['lane_end_s']} s (target <= {x['target_s']} s)",
        f"  thumbnail CPU per image: {lane['cpu_ms_per_image']} ms with the lane ({lane['workers']} worker(s)), "
        f"{out['today']['cpu_ms_per_image']} ms serial; overlapped job time: {lane['overlap_share'] * 100:.1f}%; "
        f"lane made {lane['made']}, dropped {lane['dropped']}, failed {lane['failed']}",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200, help="images fed (at 4/s by default: 200 take 50 s)")
    p.add_argument("--side", type=int, default=1024)
    p.add_argument("--backends", type=int, default=2)
    p.add_argument("--job-seconds", type=float, default=0.5)
    a = p.parse_args()
    out = measure(a.images, a.side, a.backends, a.job_seconds)
    save("end_of_run", out)
    print(report(out))


if __name__ == "__main__":
    main()
