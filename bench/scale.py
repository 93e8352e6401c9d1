"""4. Scale: a 1,000,000-job dry run, a 100,000-job run against instant fake servers, and resuming it.

Peak memory is the child process's maximum RSS. The run uses 4 fake backends that answer at once
(no work per prompt), the real CLI path (runner, journal, index, one downloaded file per job).
Resume: 1% of the records are removed from the finished index, then the same command runs again;
the skip phase (open the store, walk the sweep, check each job's record and files) is timed on its own.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from bench.common import INVERT, cpu_seconds, emit, peak_rss_mb, run_child, save, workdir
from bench.farm import Farm


def write_manifest(path: Path, urls: list[str], grid: dict, exclude: list | None = None, executor: str = "http") -> Path:
    block: dict = {"grid": grid}
    if exclude:
        block["exclude"] = exclude
    m = {"name": "scale", "output": str(path / "out"), "defaults": {"timeout": 120, "retries": 2, "executor": executor},
         "backends": [{"name": f"b{i}", "url": u} for i, u in enumerate(urls)] or [{"url": "http://127.0.0.1:9"}],
         "workflows": [{"name": "w", "source": str(INVERT)}], "sweep": block}
    p = path / "m.yaml"
    p.write_text(yaml.safe_dump(m))
    return p


def child_cli(manifest: str, *extra: str) -> None:
    from comfykit_batch.cli import main

    t0 = time.perf_counter()
    code = main([manifest, "-q", *extra])
    emit({"code": code, "wall": time.perf_counter() - t0, "rss_mb": peak_rss_mb(), "cpu": cpu_seconds()})


def child_skip(manifest: str) -> None:
    from comfykit_batch.batch.manifest import load_manifest
    from comfykit_batch.batch.store import ResultStore
    from comfykit_batch.batch.sweep import Sweep
    from comfykit_batch.cli.run import load_workflows

    t0 = time.perf_counter()
    m = load_manifest(manifest)
    wfs = load_workflows(m)
    store = ResultStore(m.output, m.name).open()
    pending = sum(1 for j in Sweep(m.blocks, {k: w.fingerprint() for k, w in wfs.items()}) if not store.settled(j.id))
    emit({"pending": pending, "wall": time.perf_counter() - t0, "rss_mb": peak_rss_mb()})


def measure(run_jobs: int, dry_side: int = 1000) -> dict:
    out: dict = {}
    dry_jobs = dry_side * dry_side
    with workdir() as tmp:
        d = Path(tmp)
        grid = {"width": list(range(1, dry_side + 1)), "height": list(range(1, dry_side + 1))}
        m = write_manifest(d, [], grid)
        r = run_child(["-m", "bench.scale", "--child", "cli", "--manifest", str(m), "--extra=--dry-run"])
        out["dry_run_1m"] = {"jobs": dry_jobs, "wall_s": round(r["wall"], 2), "peak_rss_mb": round(r["rss_mb"], 1)}
        m = write_manifest(d, [], grid, exclude=[{"width": 1, "height": 1}])
        r = run_child(["-m", "bench.scale", "--child", "cli", "--manifest", str(m), "--extra=--dry-run"])
        out["dry_run_1m_walked"] = {"jobs": dry_jobs - 1, "wall_s": round(r["wall"], 2), "peak_rss_mb": round(r["rss_mb"], 1),
                                    "note": "an exclude rule forces the count to walk every job and compute its id"}
    farm = Farm(4, 0.0)
    with workdir() as tmp:
        d = Path(tmp)
        side = 1000 if run_jobs >= 1000 else run_jobs
        grid = {"width": list(range(1, side + 1)), "height": list(range(1, run_jobs // side + 1))}
        jobs = side * (run_jobs // side)
        m = write_manifest(d, farm.urls, grid)
        r = run_child(["-m", "bench.scale", "--child", "cli", "--manifest", str(m)], timeout=3600)
        out["run"] = {"jobs": jobs, "exit": r["code"], "wall_s": round(r["wall"], 1), "jobs_per_s": round(jobs / r["wall"], 1),
                      "client_cpu_ms_per_job": round(1000 * r["cpu"] / jobs, 3),
                      "peak_rss_mb": round(r["rss_mb"], 1)}
        index = d / "out" / "index.json"
        # Forget the last 1% of the jobs, keeping the store's one-job-per-line layout.
        lines = index.read_text().splitlines()
        records = lines[1:-1]
        keep = records[: len(records) - len(records) // 100]
        keep[-1] = keep[-1].rstrip(",")
        index.write_text("\n".join([lines[0], *keep, lines[-1]]) + "\n")
        json.loads(index.read_text())  # still one valid JSON document
        r = run_child(["-m", "bench.scale", "--child", "skip", "--manifest", str(m)])
        out["resume_skip_phase"] = {"jobs": jobs, "pending": r["pending"], "wall_s": round(r["wall"], 2),
                                    "peak_rss_mb": round(r["rss_mb"], 1)}
        r = run_child(["-m", "bench.scale", "--child", "cli", "--manifest", str(m)], timeout=3600)
        out["resume_run"] = {"jobs": jobs, "exit": r["code"], "wall_s": round(r["wall"], 2), "peak_rss_mb": round(r["rss_mb"], 1)}
    farm.finish()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", choices=["cli", "skip"])
    p.add_argument("--manifest")
    p.add_argument("--extra", action="append", default=[])
    p.add_argument("--jobs", type=int, default=100_000)
    a = p.parse_args()
    if a.child == "cli":
        return child_cli(a.manifest, *a.extra)
    if a.child == "skip":
        return child_skip(a.manifest)
    out = measure(a.jobs)
    save("scale", out)
    for k, v in out.items():
        print(f"  {k:20} " + "  ".join(f"{kk}={vv}" for kk, vv in v.items()))


if __name__ == "__main__":
    main()
