"""4. Scale: a 1,000,000-job dry run, a 1,000,000-job store alone, a 100,000-job run against instant fake servers, and resuming it.

Peak memory is the child process's maximum RSS. The run uses 4 fake backends that answer at once
(no work per prompt), the real CLI path (runner, journal, index, one downloaded file per job).
Resume: 1% of the records are removed from the finished index, then the same command runs again;
the skip phase (open the store, walk the sweep, check each job's record and files) is timed on its own.
The store alone: a million realistic records written through ``record()`` (per-job cost, then the
``index.json`` export), then a fresh process opens the store and walks every id (``walk``, the
resume's path), the cost of making the ids taken out.
Resume at 1M: a finished 1000 x 1000 sweep's skip phase (manifest, sweep walk, store, files check), the
records written as a run writes them (each with its position in the sweep). ``--resume-only`` measures that
alone; with ``--real-files`` every record names a file of its own (an empty one per job, created for it),
so the files check lists a folder of a million names.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
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
    """The resume's skip phase alone: open the store, walk the sweep, ask the store about every job."""
    from comfykit_batch.batch.run.session import prepare
    from comfykit_batch.batch.store.store import ResultStore

    t0 = time.perf_counter()
    prepared = prepare(manifest)
    m = prepared.manifest
    store = ResultStore(m.output, m.name).open()
    pending = sum(1 for _, state in store.walk(prepared.sweep) if state != "completed")
    emit({"pending": pending, "wall": time.perf_counter() - t0, "rss_mb": peak_rss_mb()})


def _id(i: int) -> str:
    """Ids shaped like the sweep's (hex of a hash: the id index is visited in random order)."""
    return hashlib.sha256(str(i).encode()).hexdigest()[:20]


SHARED_FILE = "files/w/shared_image.png"


def _record(i: int) -> dict:
    """A record shaped like a real one (one image file), about 600 bytes as JSON.

    Every record names the same file, so a resume's check of it is a successful ``stat`` (as for a
    finished batch) without a million files to create.
    """
    jid = _id(i)
    return {"id": jid, "seq": i, "workflow": "w", "params": {"width": i % 1000, "height": i // 1000}, "repeat": 0, "seeds": {},
            "backend": "b0", "status": "completed", "attempts": 1, "prompt_id": f"{i:032x}",
            "started": 1764100000.0 + i, "finished": 1764100000.5 + i, "duration": 0.5,
            "files": [{"var": "image", "kind": "image", "path": SHARED_FILE, "size": 1234,
                       "sha256": f"{i:064x}", "source_name": "ComfyUI_00001_.png", "node": "9", "type": "output"}],
            "texts": {}, "error": None}


def child_store_write(folder: str, n: int) -> None:
    """Records written as a run writes them: each with its position, under a sweep's signature."""
    from comfykit_batch.batch.store.store import ResultStore

    store = ResultStore(Path(folder), "scale").open()
    store.use_sweep(hashlib.sha256(b"scale").hexdigest()[:20])
    (Path(folder) / SHARED_FILE).parent.mkdir(parents=True)
    (Path(folder) / SHARED_FILE).write_bytes(bytes(1234))
    t0 = time.perf_counter()
    for i in range(n):
        store.record(_record(i))
    t1 = time.perf_counter()
    store.close()
    emit({"record_us": 1e6 * (t1 - t0) / n, "export_s": time.perf_counter() - t1, "rss_mb": peak_rss_mb()})


def child_store_resume(folder: str, n: int) -> None:
    """Time the store's part of a resume: ids are made on the fly (their cost is measured and taken out)."""
    from comfykit_batch.batch.store.store import ResultStore

    t0 = time.perf_counter()
    ids_only = sum(1 for _ in (_Job(_id(i)) for i in range(n)))
    baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = ResultStore(Path(folder), "scale").open()
    opened = time.perf_counter() - t0
    batched = sum(1 for _, state in store.walk(_Job(_id(i)) for i in range(n)) if state == "completed")
    walked = time.perf_counter() - t0 - baseline
    emit({"open_s": opened, "walk_s": walked, "ids_s": baseline, "settled": [ids_only, batched], "rss_mb": peak_rss_mb()})


class _Job:
    __slots__ = ("id",)

    def __init__(self, job_id: str) -> None:
        self.id = job_id


def measure_store(n: int) -> dict:
    with workdir() as tmp:
        w = run_child(["-m", "bench.scale", "--child", "store-write", "--manifest", tmp, "--jobs", str(n)], timeout=3600)
        r = run_child(["-m", "bench.scale", "--child", "store-resume", "--manifest", tmp, "--jobs", str(n)], timeout=3600)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.name.startswith("index.sqlite"))
    return {"jobs": n, "record_us_per_job": round(w["record_us"], 2), "export_index_json_s": round(w["export_s"], 2),
            "write_peak_rss_mb": round(w["rss_mb"], 1), "sqlite_mb": round(size / 2**20, 1),
            "resume_open_s": round(r["open_s"], 3), "resume_walk_s": round(r["walk_s"], 2),
            "making_ids_s (taken out)": round(r["ids_s"], 2),
            "settled": r["settled"],
            "resume_peak_rss_mb": round(r["rss_mb"], 1)}


def child_build(manifest: str, real_files: bool = False) -> None:
    """Record every job of a manifest's sweep (realistic records naming one shared file, or an empty file of
    its own with ``real_files``), as a finished run would: under the sweep's signature, with positions."""
    from comfykit_batch.batch.run.session import prepare
    from comfykit_batch.batch.store.store import ResultStore

    prepared = prepare(manifest)
    m = prepared.manifest
    store = ResultStore(m.output, m.name).open(m.text)
    store.use_sweep(prepared.sweep.signature)
    (store.root / SHARED_FILE).parent.mkdir(parents=True, exist_ok=True)
    (store.root / SHARED_FILE).write_bytes(bytes(1234))
    n = 0
    for n, job in enumerate(prepared.sweep, 1):
        rec = _record(n)
        rec["id"], rec["seq"], rec["params"] = job.id, job.seq, dict(job.params)
        if real_files:
            path = store.path_for(job.workflow, job.id, "image", 0, "x.png")
            path.touch()
            rec["files"][0].update(path=store.relative(path), size=0)
        store.record(rec)
    store.close()
    emit({"jobs": n})


def measure_resume(side: int, real_files: bool = False) -> dict:
    """The skip phase of resuming a finished side x side sweep: manifest, sweep walk, store, files check."""
    with workdir() as tmp:
        m = write_manifest(Path(tmp), [], {"width": list(range(1, side + 1)), "height": list(range(1, side + 1))})
        extra = ["--real-files"] if real_files else []
        built = run_child(["-m", "bench.scale", "--child", "build", "--manifest", str(m), *extra], timeout=3600)
        r = run_child(["-m", "bench.scale", "--child", "skip", "--manifest", str(m)], timeout=3600)
    return {"jobs": built["jobs"], "pending": r["pending"], "wall_s": round(r["wall"], 2), "peak_rss_mb": round(r["rss_mb"], 1)}


def forget_last(index_db: Path, fraction: float) -> None:
    """Remove the last ``fraction`` of the records (by first-recorded order) from a store's index."""
    conn = sqlite3.connect(index_db)
    total = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    keep = total - int(total * fraction)
    conn.execute("DELETE FROM jobs WHERE n IN (SELECT n FROM jobs ORDER BY n LIMIT -1 OFFSET ?)", (keep,))
    conn.commit()
    conn.close()


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
        forget_last(d / "out" / "index.sqlite", 0.01)
        r = run_child(["-m", "bench.scale", "--child", "skip", "--manifest", str(m)])
        out["resume_skip_phase"] = {"jobs": jobs, "pending": r["pending"], "wall_s": round(r["wall"], 2),
                                    "peak_rss_mb": round(r["rss_mb"], 1)}
        r = run_child(["-m", "bench.scale", "--child", "cli", "--manifest", str(m)], timeout=3600)
        out["resume_run"] = {"jobs": jobs, "exit": r["code"], "wall_s": round(r["wall"], 2), "peak_rss_mb": round(r["rss_mb"], 1)}
    farm.finish()
    out["store_alone"] = measure_store(dry_jobs)
    out["resume_skip_phase_1m"] = measure_resume(dry_side)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", choices=["cli", "skip", "store-write", "store-resume", "build"])
    p.add_argument("--manifest")
    p.add_argument("--extra", action="append", default=[])
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--resume-only", action="store_true", help="only the skip phase of resuming a finished 1000 x 1000 sweep")
    p.add_argument("--real-files", action="store_true", help="each record names an empty file of its own")
    a = p.parse_args()
    if a.child == "cli":
        return child_cli(a.manifest, *a.extra)
    if a.child == "skip":
        return child_skip(a.manifest)
    if a.child == "build":
        return child_build(a.manifest, a.real_files)
    if a.child == "store-write":
        return child_store_write(a.manifest, a.jobs)
    if a.child == "store-resume":
        return child_store_resume(a.manifest, a.jobs)
    if a.resume_only:
        print(measure_resume(1000, a.real_files))
        return
    out = measure(a.jobs)
    save("scale", out)
    for k, v in out.items():
        print(f"  {k:20} " + "  ".join(f"{kk}={vv}" for kk, vv in v.items()))


if __name__ == "__main__":
    main()
