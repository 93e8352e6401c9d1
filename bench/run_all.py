"""Run every benchmark with its default size, then print the summary table (bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import RESULTS, ROOT

STEPS = [
    ("client_overhead", ["--n", "500"]),
    ("utilisation", ["--per-backend", "40"]),
    ("latency", ["--n", "100"]),
    ("downloads", []),
    ("scale", ["--jobs", "100000"]),
]


def table(data: dict) -> str:
    lines = []
    co = data.get("client_overhead")
    if co:
        lines.append(f"Client overhead on the real ComfyUI server, {co['n']} jobs (ratios against comfykit 0.1.12 over HTTP):")
        lines.append(f"  {'client':36} {'jobs/s':>8} {'cpu ms/job':>11} {'x jobs/s':>9} {'x cpu/job':>10}")
        for label, r in co["rows"].items():
            lines.append(f"  {label:36} {r['jobs_per_s']:>8} {r['cpu_ms_per_job']:>11} {r['jobs_per_s_vs_comfykit_http']:>9} "
                         f"{r['cpu_per_job_vs_comfykit_http']:>10}")
    ut = data.get("utilisation")
    if ut:
        for ex, res in ut.items():
            cells = ", ".join(f"{r['backends']}: {r['utilisation_min'] * 100:.1f}% (mean {r['utilisation_mean'] * 100:.1f}%)"
                              for r in res["rows"].values())
            lines.append(f"Utilisation ({ex}, {res['work_ms']:.0f} ms/prompt, concurrency {res['concurrency']}), min per backend: {cells}")
    la = data.get("latency")
    if la:
        lines.append("Completion latency (server done -> client knows): " + "; ".join(
            f"{k} {q['median_ms']} ms median / {q['p95_ms']} ms p95" for k, q in la["rows"].items()))
    sc = data.get("scale")
    if sc:
        d, w, r, s, rr = (sc.get(k, {}) for k in ("dry_run_1m", "dry_run_1m_walked", "run", "resume_skip_phase", "resume_run"))
        lines.append(f"Scale: {d.get('jobs')}-job dry run {d.get('wall_s')} s, {d.get('peak_rss_mb')} MB; walked "
                     f"{w.get('wall_s')} s, {w.get('peak_rss_mb')} MB; {r.get('jobs')}-job run {r.get('wall_s')} s "
                     f"({r.get('jobs_per_s')} jobs/s), {r.get('peak_rss_mb')} MB; resume at 99%: skip phase {s.get('wall_s')} s, "
                     f"whole resume {rr.get('wall_s')} s")
    dl = data.get("downloads")
    if dl:
        lines.append("Downloads: " + "; ".join(f"{k}: peak RSS +{r['peak_rss_growth_mb']} MB for {r['files']} x {r['file_mb']} MB"
                                               for k, r in dl["rows"].items()))
    return "\n".join(lines)


def main() -> int:
    only = set(sys.argv[1:])
    t0 = time.monotonic()
    for name, args in STEPS:
        if only and name not in only:
            continue
        t = time.monotonic()
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=str(ROOT))
        if proc.returncode != 0:
            print(f"{name} failed ({proc.returncode})", file=sys.stderr)
            return proc.returncode
        print(f"   ({time.monotonic() - t:.0f} s)", flush=True)
    print(f"\nall benchmarks: {time.monotonic() - t0:.0f} s; figures in {RESULTS.relative_to(ROOT)}\n")
    print(table(json.loads(RESULTS.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
