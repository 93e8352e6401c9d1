"""2. Backend utilisation: busy time / wall time per backend, with 1, 4 and 16 fake backends.

Each fake executes one prompt at a time and takes a fixed time per prompt (default 50 ms), like a
GPU-bound ComfyUI. The batch runner runs with its defaults (concurrency 2 per backend) through the
real CLI path (runner + result store + downloads). Wall time is from the first prompt starting on
any backend to the last one ending, so client start-up is not counted against the servers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import yaml

from bench.common import INVERT, emit, run_child, save, workdir
from bench.farm import Farm


def child(urls: list[str], jobs: int, executor: str, out: str) -> None:
    from comfykit_batch.cli import main

    manifest = {
        "name": "util", "output": out, "defaults": {"timeout": 120, "executor": executor},
        "backends": [{"name": f"b{i}", "url": u} for i, u in enumerate(urls)],
        "workflows": [{"name": "w", "source": str(INVERT)}],
        "sweep": {"grid": {"width": list(range(1, jobs + 1))}},
    }
    path = Path(out) / "m.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest))
    t0 = time.perf_counter()
    code = main([str(path), "-q"])
    from bench.common import cpu_seconds

    emit({"code": code, "wall": time.perf_counter() - t0, "cpu": cpu_seconds()})


def measure_one(b: int, per_backend: int, work: float, executor: str) -> dict:
    """One CLI run over ``b`` fake backends; utilisation from the fakes' own busy intervals."""
    farm = Farm(b, work)
    with workdir() as tmp:
        r = run_child(["-m", "bench.utilisation", "--child", "--executor", executor, "--jobs", str(b * per_backend),
                       "--out", tmp, "--urls", ",".join(farm.urls)])
    report = farm.finish()
    starts = [s for srv in report for s, _ in srv["busy"]]
    ends = [e for srv in report for _, e in srv["busy"]]
    wall = max(ends) - min(starts)
    utils = [sum(e - s for s, e in srv["busy"]) / wall for srv in report]
    return {"backends": b, "jobs": b * per_backend, "exit": r["code"],
            "client_cpu_busy": round(r["cpu"] / r["wall"], 2), "farm_cpu_busy": round(report[0]["farm_cpu"] / r["wall"], 2),
            "utilisation_min": round(min(utils), 4), "utilisation_mean": round(sum(utils) / len(utils), 4),
            "client_wall_s": round(r["wall"], 2), "client_cpu_ms_per_job": round(1000 * r["cpu"] / (b * per_backend), 3)}


def measure(backends: list[int], per_backend: int, work: float, executor: str, rounds: int = 1) -> dict:
    """Each backend count ``rounds`` times, interleaved; each figure is the median over the rounds.

    ``farm_cpu_busy`` is the cores the fake servers' process used (one process: about 1.0 means the
    fakes, not the client, were the limit); ``client_cpu_busy`` the same for the CLI's process.
    """
    runs: dict[int, list[dict]] = {b: [] for b in backends}
    for _ in range(rounds):
        for b in backends:
            runs[b].append(measure_one(b, per_backend, work, executor))
    rows = {}
    for b, rs in runs.items():
        row = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k not in ("backends", "jobs", "exit")}
        rows[str(b)] = {"backends": b, "jobs": b * per_backend, "exit": max(r["exit"] for r in rs), "runs": len(rs), **row,
                        "all_utilisation_min": [r["utilisation_min"] for r in rs]}
    return {"work_ms": work * 1000, "executor": executor, "concurrency": 2, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--urls")
    p.add_argument("--jobs", type=int)
    p.add_argument("--out")
    p.add_argument("--executor", default="websocket")
    p.add_argument("--per-backend", type=int, default=60)
    p.add_argument("--work", type=float, default=0.05)
    p.add_argument("--executors", default="websocket,http")
    p.add_argument("--backends", default="1,4,16")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    if a.child:
        return child(a.urls.split(","), a.jobs, a.executor, a.out)
    results = {ex: measure([int(x) for x in a.backends.split(",")], a.per_backend, a.work, ex, a.rounds)
               for ex in a.executors.split(",")}
    save("utilisation", results)
    for ex, res in results.items():
        print(f"utilisation, {ex} executor, {res['work_ms']:.0f} ms per prompt, concurrency 2, medians of {a.rounds}")
        for r in res["rows"].values():
            print(f"  {r['backends']:>3} backends  {r['jobs']:>5} jobs  min {r['utilisation_min'] * 100:6.2f}%  "
                  f"mean {r['utilisation_mean'] * 100:6.2f}%  exit {r['exit']}  "
                  f"CPU cores busy: client {r['client_cpu_busy']}, fake servers {r['farm_cpu_busy']}")


if __name__ == "__main__":
    main()
