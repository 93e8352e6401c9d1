"""1. Client overhead per job on the real ComfyUI server: comfykit_batch vs the published comfykit.

Every client runs in its own process against the same real server, on N tiny model-free jobs
(64x8-ish EmptyImage -> ImageInvert -> SaveImage, a few ms of server work), each job distinct so
nothing is served from cache. Reported: jobs/s and client CPU seconds per job, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import INVERT, cpu_seconds, emit, ensure_peer_venv, run_child, save


def child_ours(url: str, executor: str, n: int, offset: int, concurrency: int) -> None:
    from comfykit_batch import Workflow
    from comfykit_batch.executors.factory import create_executor

    wf = Workflow.from_file(INVERT)
    ex = create_executor(url, executor=executor, concurrency=concurrency)
    ex.prepare(wf)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda i: ex.execute(wf, {"width": 8 + offset + i, "height": 8}, timeout=120), range(n)))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    ex.close()
    ok = sum(r.status == "completed" for r in results)
    emit({"ok": ok, "n": n, "wall": wall, "cpu": cpu})


def child_peer(url: str, executor: str, n: int, offset: int) -> None:
    import logging

    from comfykit import ComfyKit  # the published package, from its own venv

    logging.disable(logging.CRITICAL)

    async def main() -> list:
        kit = ComfyKit(comfyui_url=url, executor_type=executor)
        return await asyncio.gather(*[kit.execute(str(INVERT), {"width": 8 + offset + i, "height": 8}) for i in range(n)])

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    results = asyncio.run(main())
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    emit({"ok": sum(r.status == "completed" for r in results), "n": n, "wall": wall, "cpu": cpu})


def measure(n: int, smoke: bool = False) -> dict:
    from comfykit_batch.local_comfyui import LocalComfyUI

    peer_py = ensure_peer_venv()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp, LocalComfyUI(Path(tmp)) as server:
        plan = [("comfykit_batch http c=2", ["ours", "http", "2"]), ("comfykit_batch websocket c=2", ["ours", "websocket", "2"]),
                ("comfykit_batch websocket c=8", ["ours", "websocket", "8"]), ("comfykit 0.1.12 http gather", ["peer", "http"]),
                ("comfykit 0.1.12 websocket gather", ["peer", "websocket"])]
        for k, (label, spec) in enumerate(plan):
            offset = 1000 + k * (n + 10)
            args = ["-m", "bench.client_overhead", "--child", spec[0], "--url", server.url, "--executor", spec[1],
                    "--n", str(n), "--offset", str(offset)]
            if spec[0] == "ours":
                args += ["--concurrency", spec[2]]
            r = run_child(args, python=peer_py if spec[0] == "peer" else None)
            rows[label] = {"ok": r["ok"], "n": n, "jobs_per_s": round(r["n"] / r["wall"], 2),
                           "cpu_ms_per_job": round(1000 * r["cpu"] / r["n"], 3), "wall_s": round(r["wall"], 3)}
    base = rows["comfykit 0.1.12 http gather"]
    for row in rows.values():
        row["jobs_per_s_vs_comfykit_http"] = round(row["jobs_per_s"] / base["jobs_per_s"], 2) if base["jobs_per_s"] else None
        row["cpu_per_job_vs_comfykit_http"] = round(row["cpu_ms_per_job"] / base["cpu_ms_per_job"], 3) if base["cpu_ms_per_job"] else None
    return {"n": n, "server": "real ComfyUI 0.3.75 (CPU)", "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--child")
    p.add_argument("--url")
    p.add_argument("--executor", default="http")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--concurrency", type=int, default=2)
    a = p.parse_args()
    if a.child == "ours":
        return child_ours(a.url, a.executor, a.n, a.offset, a.concurrency)
    if a.child == "peer":
        return child_peer(a.url, a.executor, a.n, a.offset)
    out = measure(a.n)
    save("client_overhead", out)
    print(f"client overhead, {out['n']} jobs on {out['server']}")
    print(f"{'client':36} {'ok':>5} {'jobs/s':>8} {'cpu ms/job':>11} {'x jobs/s':>9} {'x cpu':>7}")
    for label, r in out["rows"].items():
        print(f"{label:36} {r['ok']:>5} {r['jobs_per_s']:>8} {r['cpu_ms_per_job']:>11} "
              f"{r['jobs_per_s_vs_comfykit_http']:>9} {r['cpu_per_job_vs_comfykit_http']:>7}")


if __name__ == "__main__":
    sys.exit(main())
