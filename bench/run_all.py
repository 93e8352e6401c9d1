"""Run every benchmark with its default size, then print the summary table (bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.common import RESULTS, ROOT

STEPS = [
    ("client_overhead", ["--n", "400", "--rounds", "3"]),
    ("utilisation", ["--per-backend", "40", "--rounds", "3"]),
    ("latency", ["--n", "100"]),
    ("downloads", []),
    ("scale", ["--jobs", "100000"]),
    ("gallery", ["--n", "10000"]),
    ("models", []),
    ("end_of_run", []),
]


def client_lines(co: dict[str, Any]) -> list[str]:
    """Issue 13's client targets: ratios to the server-bound rate and to comfykit's best, CPU per job."""
    best = co["comfykit_best"]
    lines = [f"Client on the real ComfyUI, {co['n']} jobs of {co['workflow']}: server-bound {co['server_bound_jobs_per_s']} "
             f"jobs/s; comfykit 0.1.12 at its best: " + ", ".join(f"{b['config']} {b['jobs_per_s']} jobs/s"
                                                                 for b in best.values()),
             f"  {'client':32} {'jobs/s':>8} {'x bound':>8} {'x ck best':>9} {'cpu ms/job':>10} {'marginal':>8}"]
    for label, r in co["rows"].items():
        if label.startswith("comfykit"):
            continue
        lines.append(f"  {label:32} {r['jobs_per_s']:>8} {r['x_server_bound']:>8} {r.get('x_comfykit_best', ''):>9} "
                     f"{r['cpu_ms_per_job']:>10} {r.get('marginal_cpu_ms_per_job', ''):>8}")
    lines.append("  targets: library >= 0.95 x bound, CLI >= 0.9 x bound, client CPU <= 1 ms/job "
                 "(marginal = per job beyond a small run's: start-up and imports excluded)")
    return lines


def utilisation_lines(ut: dict[str, Any]) -> list[str]:
    lines = []
    for ex, res in ut.items():
        cells = ", ".join(f"{r['backends']}: {r['utilisation_min'] * 100:.1f}% min, {r['utilisation_mean'] * 100:.1f}% mean "
                          f"(fakes' CPU {r['farm_cpu_busy']} cores, client {r['client_cpu_busy']})"
                          for r in res["rows"].values())
        lines.append(f"Utilisation ({ex}, {res['work_ms']:.0f} ms/prompt, concurrency {res['concurrency']}) by backends: {cells}")
    return lines


def scale_lines(sc: dict[str, Any]) -> list[str]:
    d, w, r, s, rr = (sc.get(k, {}) for k in ("dry_run_1m", "dry_run_1m_walked", "run", "resume_skip_phase", "resume_run"))
    return [f"Scale: {d.get('jobs')}-job dry run {d.get('wall_s')} s, {d.get('peak_rss_mb')} MB; walked "
            f"{w.get('wall_s')} s, {w.get('peak_rss_mb')} MB; {r.get('jobs')}-job run {r.get('wall_s')} s "
            f"({r.get('jobs_per_s')} jobs/s), {r.get('peak_rss_mb')} MB; resume at 99%: skip phase {s.get('wall_s')} s, "
            f"whole resume {rr.get('wall_s')} s"]


def models_lines(mo: dict[str, Any]) -> list[str]:
    """Model scheduling: makespan / lower bound per order and policy, the speed-ups, CPU per job by schedule."""
    runs, cpu = mo["real"], mo["cpu"]
    cells = "; ".join(f"{label} {r['wall_s']} s ({r['x_lower_bound']}x)" for label, r in runs["rows"].items())
    return [f"Model scheduling ({runs['backends']} backends, {runs['jobs']} jobs, {runs['keys']} keys, switch {runs['switch_s']} s, "
            f"job {runs['job_s']} s; makespan (x lower bound {runs['lower_bound_s']} s)): {cells}",
            f"  new vs sweep order (model axis fastest) {runs['speedup_vs_sweep_fastest']}x, vs SwarmUI-style (slowest) "
            f"{runs['speedup_vs_swarm_slowest']}x (targets: <= 1.25x bound, >= 4x, >= 1.3x); CLI CPU per job, sweep / models: "
            f"{cpu['cpu_ms_per_job']['sweep']} / {cpu['cpu_ms_per_job']['models']} ms, marginal "
            f"{cpu['marginal_cpu_ms_per_job']['sweep']} / {cpu['marginal_cpu_ms_per_job']['models']} ms (target: +0.1 ms at most)"]


def table(data: dict[str, Any]) -> str:
    lines: list[str] = []
    if data.get("client_overhead"):
        lines += client_lines(data["client_overhead"])
    if data.get("utilisation"):
        lines += utilisation_lines(data["utilisation"])
    la = data.get("latency")
    if la:
        lines.append("Completion latency (server done -> client knows): " + "; ".join(
            f"{k} {q['median_ms']} ms median / {q['p95_ms']} ms p95" for k, q in la["rows"].items()))
    if data.get("scale"):
        lines += scale_lines(data["scale"])
    dl = data.get("downloads")
    if dl:
        lines.append("Downloads: " + "; ".join(f"{k}: peak RSS +{r['peak_rss_growth_mb']} MB for {r['files']} x {r['file_mb']} MB"
                                               for k, r in dl["rows"].items()))
    if data.get("models"):
        lines += models_lines(data["models"])
    ga = data.get("gallery")
    if ga:
        lines.append("Gallery: " + ", ".join(f"{k} {v}" for k, v in ga.items()))
    if data.get("end_of_run"):
        from bench.end_of_run import report

        lines += report(data["end_of_run"]).splitlines()
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
