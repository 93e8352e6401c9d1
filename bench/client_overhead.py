"""1. Client overhead on the real ComfyUI, side by side in one run, against the server-bound rate.

Every client drives the same real server with the shipped example workflow
(``manifests/workflows/noisy_swatch.json``), each job distinct (its own seed), so nothing is served
from the server's cache and every client asks the server for exactly the same work:

- ``raw``: the server-bound rate. A minimal client posts every prompt (client-chosen ids) as fast as
  the server accepts them, then waits for the last; rate = jobs / (first post -> last
  ``execution_success``). No client can beat it by much: it is what the server can do.
- ``server-bound, socket listening``: the same with a WebSocket connected under the prompts' client
  id and read to the end, so the server also encodes and sends the ~16 events of every prompt: about
  what any client that follows its jobs by events can reach (and a client that polls ``/history``
  once per job pays about as much).
- ``comfykit 0.1.12``: the published package (own venv), with 1, 2 and 4 jobs in flight; its best.
- ``library``: ``create_executor`` (http and websocket), 2 jobs in flight (the runner's default).
- ``cli``: ``python -m comfykit_batch MANIFEST`` (downloads and index writes included), rate from
  the index (first job started -> last finished), CPU of the whole process, and the marginal CPU per
  job (minus a small run's, so interpreter start-up and imports are not spread over the jobs).

Each row also gives the server's own CPU per job (its process, from /proc): the client's requests
cost the server too (a ``/view`` about 0.36 ms on this machine, a ``/history`` 0.12 ms, against
about 3 ms a prompt), which bounds the rate of any client that downloads every output.

The server's output folder is emptied before every run (SaveImage scans it for its counter, so the
server slows as files pile up). Runs are interleaved over rounds (order rotated); medians reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, cpu_seconds, drop_caches, emit, ensure_peer_venv, run_child, save, set_aside, workdir

SWATCH = ROOT / "manifests" / "workflows" / "noisy_swatch.json"
#: the values every job shares; only the seed differs from job to job
FIXED = {"color": 0xFF0000, "label": "red", "strength": 0.2, "width": 32}
PEER_CONCURRENCY = (1, 2, 4)
#: the raw client with a WebSocket listening to its prompts' events: about what a client following its jobs by events can reach
LISTENING = "server-bound, socket listening"
#: comfykit's HTTP executor sleeps 1 s between polls (about c jobs/s): it runs n / this many jobs, or the run takes minutes
PEER_HTTP_FEWER = 40


def job_params(seed: int) -> dict[str, Any]:
    return {**FIXED, "seed": seed}


def raw_prompt(base: dict[str, Any], seed: int) -> dict[str, Any]:
    """The swatch prompt with the job's values set by hand (what the clients' binding produces)."""
    p = json.loads(json.dumps(base))
    p["1"]["inputs"].update(width=FIXED["width"], color=FIXED["color"])
    p["2"]["inputs"].update(seed=seed, strength=FIXED["strength"])
    p["4"]["inputs"]["string_b"] = FIXED["label"]
    return p


def child_raw(url: str, n: int, offset: int, listen: bool = False) -> None:
    """Post every prompt, then wait for the last (FIFO queue); timestamps from the server's history.

    ``listen``: a WebSocket is connected under the prompts' client id and read to the last
    ``execution_success``, so the server encodes and sends every event of every prompt, as it does for
    any client that follows its jobs by events: about what such a client can reach (it does nothing else).
    """
    import threading

    import urllib3
    import websocket

    base = json.loads(SWATCH.read_text())
    client_id = f"raw-{uuid.uuid4().hex}"
    bodies = [(str(uuid.uuid4()), json.dumps({"prompt": raw_prompt(base, offset + i), "client_id": client_id}))
              for i in range(n)]
    bodies = [(pid, body[:-1] + f',"prompt_id":"{pid}"}}') for pid, body in bodies]
    http = urllib3.PoolManager(maxsize=2)
    ws = websocket.create_connection(f"ws{url[4:]}/ws?clientId={client_id}") if listen else None
    reader = threading.Thread(target=_read_to_last_success, args=(ws, n)) if ws is not None else None
    cpu0, t0 = cpu_seconds(), time.time()
    if reader is not None:
        reader.start()
    for _pid, body in bodies:
        r = http.request("POST", f"{url}/prompt", body=body, headers={"Content-Type": "application/json"})
        if r.status != 200:
            raise RuntimeError(f"POST /prompt: {r.status} {r.data[:300]!r}")
    last = bodies[-1][0]
    while not json.loads(http.request("GET", f"{url}/history/{last}").data):
        time.sleep(0.02)
    if reader is not None:
        reader.join()
    cpu = cpu_seconds() - cpu0
    ends, ok = [], 0
    for pid, _ in bodies:
        entry = json.loads(http.request("GET", f"{url}/history/{pid}").data)[pid]
        ok += entry["status"]["status_str"] == "success"
        ends += [m[1]["timestamp"] / 1000.0 for m in entry["status"]["messages"] if m[0] == "execution_success"]
    emit({"ok": ok, "n": n, "wall": max(ends) - t0, "cpu": cpu})


def _read_to_last_success(ws: Any, n: int) -> None:
    """Read the socket until ``n`` prompts have succeeded, then close it."""
    with contextlib.closing(ws):
        done = 0
        while done < n:
            message = ws.recv()
            done += isinstance(message, str) and '"execution_success"' in message


def child_ours(url: str, executor: str, n: int, offset: int, concurrency: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from comfykit_batch import Workflow
    from comfykit_batch.executors.factory import create_executor

    wf = Workflow.from_file(SWATCH)
    ex = create_executor(url, executor=executor, concurrency=concurrency)
    ex.prepare(wf)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda i: ex.execute(wf, job_params(offset + i), timeout=120), range(n)))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    ex.close()
    emit({"ok": sum(r.status == "completed" for r in results), "n": n, "wall": wall, "cpu": cpu})


def child_peer(url: str, executor: str, n: int, offset: int, concurrency: int) -> None:
    import logging

    from comfykit import ComfyKit  # the published package, from its own venv

    logging.disable(logging.CRITICAL)

    async def main() -> list:
        kit = ComfyKit(comfyui_url=url, executor_type=executor)
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> Any:
            async with gate:
                return await kit.execute(str(SWATCH), job_params(offset + i))

        await one(-1)  # its first call loads the workflow and opens connections: not counted, as for ours
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        results = await asyncio.gather(*[one(i) for i in range(n)])
        emit({"ok": sum(r.status == "completed" for r in results), "n": n, "wall": time.perf_counter() - t0,
              "cpu": cpu_seconds() - cpu0})
        return results

    asyncio.run(main())


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_cli(url: str, executor: str, n: int, offset: int, *, keep: Path, gallery: bool = False, concurrency: int = 2,
            server_output: Path | None = None, python: tuple[str, ...] = (sys.executable,),
            code: Path = ROOT) -> dict[str, Any]:
    """The CLI as a user runs it, in its own process; CPU from the kernel's account of that child.

    ``keep``: the scratch folder the run's own folder is made in, deleted when the benchmark ends
    (see ``set_aside``). ``gallery``: the end-of-run gallery (on by default for users; off here
    unless asked, since its thumbnails are a report, not the running of jobs). ``server_output``: the
    server's output folder, given as the backend's ``server_output_dir`` (outputs read there, not
    downloaded). ``python`` is the interpreter command (a profiler's command line ending in the
    interpreter, to profile). ``code`` is the folder whose ``comfykit_batch`` runs (another
    checkout, to compare before and after a change).
    """
    import yaml  # not in the published package's venv, which imports this module too

    keep.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=keep))
    out = tmp / "out"
    manifest = {
        "name": "bench-cli", "output": str(out), "defaults": {"timeout": 120, "executor": executor},
        "backends": [{"name": "comfy", "url": url, "concurrency": concurrency,
                      **({"server_output_dir": str(server_output)} if server_output else {})}],
        "workflows": [{"name": "swatch", "source": str(SWATCH)}], "report": {"gallery": gallery},
        "sweep": [{"workflow": "swatch", "grid": {k: [v] for k, v in FIXED.items()},
                   "seeds": {"param": "seed", "count": n, "base": offset}}],
    }
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cpu0, t0 = children_cpu(), time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(code))
    proc = subprocess.run([*python, "-m", "comfykit_batch", str(path), "-q"], cwd=str(code), env=env,
                          capture_output=True, text=True, timeout=600)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"CLI exited {proc.returncode}: {proc.stderr[-2000:]}")
    jobs = json.loads((out / "index.json").read_text())["jobs"]
    span = max(j["finished"] for j in jobs) - min(j["started"] for j in jobs)
    return {"ok": sum(j["status"] == "completed" for j in jobs), "n": n, "wall": span, "cpu": cpu, "process_wall": wall}


def plan(n: int, small: int, keep: Path, server_output: Path,
         compare: Path | None = None) -> list[tuple[str, Callable[[str, str, int], dict[str, Any]]]]:
    """(label, run(url, peer_python, offset)) for every configuration of one round (``compare``: another checkout's CLI too).

    The CLI runs make their folders in ``keep`` (see ``run_cli``); ``server_output`` is the
    server's output folder, for the run that reads outputs there (``server_output_dir``).
    """

    def child(kind: str, executor: str = "", concurrency: int = 0, jobs: int = n) -> Callable[[str, str, int], dict[str, Any]]:
        def run(url: str, peer_py: str, offset: int) -> dict[str, Any]:
            args = ["-m", "bench.client_overhead", "--child", kind, "--url", url, "--n", str(jobs), "--offset", str(offset),
                    "--executor", executor, "--concurrency", str(concurrency)]
            return run_child(args, python=peer_py if kind == "peer" else None)
        return run

    rows: list[tuple[str, Callable[[str, str, int], dict[str, Any]]]] = [
        ("server-bound (raw client)", child("raw")), (LISTENING, child("raw", "websocket"))]
    for ex in ("http", "websocket"):
        jobs = n if ex == "websocket" else max(4, n // PEER_HTTP_FEWER)
        rows += [(f"comfykit 0.1.12 {ex} c={c}", child("peer", ex, c, jobs)) for c in PEER_CONCURRENCY]
        rows.append((f"library {ex} c=2", child("ours", ex, 2)))
        rows.append((f"cli {ex}", lambda url, _py, off, ex=ex: run_cli(url, ex, n, off, keep=keep)))
    for ex in ("http", "websocket"):
        rows.append((f"cli {ex}, server_output_dir",
                     lambda url, _py, off, ex=ex: run_cli(url, ex, n, off, keep=keep, server_output=server_output)))
    rows.append(("cli websocket + gallery", lambda url, _py, off: run_cli(url, "websocket", n, off, gallery=True, keep=keep)))
    rows.append((f"cli websocket, {small} jobs", lambda url, _py, off: run_cli(url, "websocket", small, off, keep=keep)))
    if compare is not None:
        for ex in ("http", "websocket"):
            rows.append((f"cli {ex} (compared)", lambda url, _py, off, ex=ex: run_cli(url, ex, n, off, code=compare, keep=keep)))
        rows.append((f"cli websocket, {small} jobs (compared)",
                     lambda url, _py, off: run_cli(url, "websocket", small, off, code=compare, keep=keep)))
    return rows


def figures(r: dict[str, Any], server_cpu: float | None) -> dict[str, Any]:
    out = {"ok": r["ok"], "n": r["n"], "jobs_per_s": round(r["n"] / r["wall"], 2),
           "cpu_ms_per_job": round(1000 * r["cpu"] / r["n"], 3), "cpu_s": round(r["cpu"], 3)}
    if server_cpu is not None:
        out["server_cpu_ms_per_job"] = round(1000 * server_cpu / r["n"], 3)
    return out


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds a process (the server) has used so far, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_rounds(n: int, rounds: int, small: int, compare: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every configuration once per round, the order rotated each round; the output folder emptied before each run.

    Nothing is deleted until the end (``set_aside``): the server's output folder is moved aside.
    """
    from comfykit_batch.local_comfyui import LocalComfyUI

    peer_py = ensure_peer_venv()
    offset = 10_000
    with workdir() as tmp, LocalComfyUI(Path(tmp)) as server:
        keep = Path(tmp) / "kept"
        configs = plan(n, small, keep, server.output_dir, compare)
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in configs}
        run_child(["-m", "bench.client_overhead", "--child", "raw", "--url", server.url, "--n", "3"])  # nodes load on first use
        for k in range(rounds):
            shift = k * len(configs) // max(1, rounds)
            for label, run in configs[shift:] + configs[:shift]:
                set_aside(server.output_dir, keep)
                pid = server.proc.pid if server.proc is not None else None
                before = process_cpu(pid)
                r = run(server.url, peer_py, offset)
                after = process_cpu(pid)
                runs[label].append(figures(r, None if before is None or after is None else after - before))
                offset += n + 10
    return runs


def median_row(rs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ok": min(r["ok"] for r in rs), "n": rs[0]["n"], "runs": len(rs),
            "jobs_per_s": round(statistics.median(r["jobs_per_s"] for r in rs), 2),
            "cpu_ms_per_job": round(statistics.median(r["cpu_ms_per_job"] for r in rs), 3),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in rs), 3),
            "server_cpu_ms_per_job": _median_or_none([r.get("server_cpu_ms_per_job") for r in rs]),
            "all_jobs_per_s": [r["jobs_per_s"] for r in rs]}


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def summarise(runs: dict[str, list[dict[str, Any]]], n: int, small: int) -> dict[str, Any]:
    """Medians per configuration, then the issue's ratios: to the server-bound rate and to comfykit's best."""
    rows = {label: median_row(rs) for label, rs in runs.items()}
    bound = rows["server-bound (raw client)"]["jobs_per_s"]
    small_cpu = rows.pop(f"cli websocket, {small} jobs")["cpu_s"]
    compared = rows.pop(f"cli websocket, {small} jobs (compared)", None)
    best: dict[str, Any] = {}
    for ex in ("http", "websocket"):
        label = max((f"comfykit 0.1.12 {ex} c={c}" for c in PEER_CONCURRENCY), key=lambda k: rows[k]["jobs_per_s"])
        best[ex] = {"config": label, "jobs_per_s": rows[label]["jobs_per_s"], "cpu_ms_per_job": rows[label]["cpu_ms_per_job"]}
    for label, row in rows.items():
        ex = "websocket" if "websocket" in label else "http"
        row["x_server_bound"] = round(row["jobs_per_s"] / bound, 3) if bound else None
        if not label.startswith("server"):
            row["x_comfykit_best"] = round(row["jobs_per_s"] / best[ex]["jobs_per_s"], 3)
            row["cpu_x_comfykit_best"] = round(row["cpu_ms_per_job"] / best[ex]["cpu_ms_per_job"], 3)
        if label.startswith("cli"):
            base = compared["cpu_s"] if compared is not None and "(compared)" in label else small_cpu
            row["marginal_cpu_ms_per_job"] = round(1000 * (row["cpu_s"] - base) / (n - small), 3)
    return {"n": n, "small": small, "server": "real ComfyUI (managed local CPU server)", "workflow": "noisy_swatch.json",
            "server_bound_jobs_per_s": bound, "listening_x_server_bound": rows[LISTENING]["x_server_bound"],
            "comfykit_best": best, "rows": rows, "runs": runs}


def measure(n: int, rounds: int = 3, small: int = 20, compare: Path | None = None) -> dict[str, Any]:
    """Every configuration ``rounds`` times on one server; ``compare``: a checkout whose CLI runs beside ours."""
    small = max(1, min(small, n // 2))
    return summarise(run_rounds(n, rounds, small, compare), n, small)


def report(out: dict[str, Any]) -> str:
    lines = [f"client overhead, {out['n']} jobs of {out['workflow']} on the {out['server']}, medians of "
             f"{next(iter(out['rows'].values()))['runs']} interleaved runs; server-bound {out['server_bound_jobs_per_s']} jobs/s",
             f"  {'client':30} {'ok':>4} {'jobs/s':>8} {'x bound':>8} {'x ck best':>9} {'cpu ms/job':>10} {'marginal':>8}"
             f" {'server ms/job':>13}"]
    for label, r in out["rows"].items():
        lines.append(f"  {label:30} {r['ok']:>4} {r['jobs_per_s']:>8} {r['x_server_bound']:>8} "
                     f"{r.get('x_comfykit_best', ''):>9} {r['cpu_ms_per_job']:>10} {r.get('marginal_cpu_ms_per_job', ''):>8}"
                     f" {r.get('server_cpu_ms_per_job') or '':>13}")
    lines.append("  comfykit best: " + "; ".join(f"{ex} {b['config']} {b['jobs_per_s']} jobs/s"
                                                for ex, b in out["comfykit_best"].items()))
    return "\n".join(lines)


def profile_cli(n: int, executor: str, dest: Path) -> None:
    """The CLI profiled on the real server: ``dest`` ``*.prof`` is cProfile (main thread), else py-spy (all threads)."""
    import pstats

    from comfykit_batch.local_comfyui import LocalComfyUI

    with workdir() as tmp, LocalComfyUI(Path(tmp)) as server:
        run_child(["-m", "bench.client_overhead", "--child", "raw", "--url", server.url, "--n", "3"])
        if dest.suffix != ".prof":  # every thread, sampled: py-spy's collapsed stacks
            spy = ("py-spy", "record", "--gil", "--format", "raw", "-r", "400", "-o", str(dest.resolve()), "--", sys.executable)
            r = run_cli(server.url, executor, n, 50_000, keep=Path(tmp) / "kept", python=spy)
            print(f"{r['ok']}/{n} jobs, {r['cpu']:.2f} s CPU (with py-spy); stacks in {dest}")
            return
        r = run_cli(server.url, executor, n, 50_000, keep=Path(tmp) / "kept",
                    python=(sys.executable, "-m", "cProfile", "-o", str(dest.resolve())))
    print(f"{r['ok']}/{n} jobs, {r['cpu']:.2f} s CPU (profiled, so slower than without)")
    stats = pstats.Stats(str(dest))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--small", type=int, default=20, help="jobs in the CLI run whose CPU is start-up and imports")
    p.add_argument("--child", choices=["raw", "ours", "peer"])
    p.add_argument("--url")
    p.add_argument("--executor", default="http")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--compare-with", metavar="DIR", type=Path,
                   help="also run the CLI of another checkout (e.g. `git archive HEAD` unpacked), labelled (compared)")
    p.add_argument("--profile-cli", metavar="PSTATS", help="profile the CLI on --n jobs instead; writes PSTATS")
    a = p.parse_args()
    if a.profile_cli:
        return profile_cli(a.n, a.executor, Path(a.profile_cli))
    if a.child == "raw":
        return child_raw(a.url, a.n, a.offset, listen=a.executor == "websocket")
    if a.child == "ours":
        return child_ours(a.url, a.executor, a.n, a.offset, a.concurrency)
    if a.child == "peer":
        return child_peer(a.url, a.executor, a.n, a.offset, a.concurrency)
    if not drop_caches():
        print("note: could not drop the kernel's caches (not root): files an earlier benchmark deleted may still slow file creation")
    out = measure(a.n, a.rounds, a.small, a.compare_with)
    save("client_overhead", out)
    print(report(out))


if __name__ == "__main__":
    main()
