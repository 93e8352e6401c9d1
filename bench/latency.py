"""3. Completion latency: from the server finishing a prompt to the client knowing, per executor.

Fake server (in a separate process): it records when each prompt's history entry is written
(perf_counter, a system-wide monotonic clock); the client records when ``execute`` returns.
Real ComfyUI: the ``execution_success`` timestamp in the history (ms, wall clock) against the
client's wall clock when ``execute`` returns. Jobs run one at a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import INVERT, emit, quantiles, run_child, save
from bench.farm import Farm


def child(url: str, executor: str, n: int, offset: int) -> None:
    from comfykit_batch import Workflow
    from comfykit_batch.executors.factory import create_executor

    wf = Workflow.from_file(INVERT)
    out = []
    with create_executor(url, executor=executor) as ex:
        for i in range(n):
            r = ex.execute(wf, {"width": 8 + offset + i, "height": 8}, timeout=60)
            out.append({"id": r.prompt_id, "perf": time.perf_counter(), "wall": time.time(), "ok": r.ok})
    emit(out)


def real_success_times(url: str, ids: list[str]) -> dict[str, float]:
    import requests

    times = {}
    for pid in ids:
        h = requests.get(f"{url}/history/{pid}", timeout=10).json()[pid]
        for kind, data in h["status"]["messages"]:
            if kind == "execution_success":
                times[pid] = data["timestamp"] / 1000.0
    return times


def measure(n: int) -> dict:
    from comfykit_batch.local_comfyui import LocalComfyUI

    rows = {}
    for executor in ("http", "websocket"):
        farm = Farm(1, 0.05)
        res = run_child(["-m", "bench.latency", "--child", "--url", farm.urls[0], "--executor", executor, "--n", str(n)])
        finished = farm.finish()[0]["finished"]
        lat = [r["perf"] - finished[r["id"]] for r in res if r["ok"]]
        rows[f"fake 50 ms, {executor}"] = quantiles(lat)
    with tempfile.TemporaryDirectory() as tmp, LocalComfyUI(Path(tmp)) as server:
        for k, executor in enumerate(("http", "websocket")):
            res = run_child(["-m", "bench.latency", "--child", "--url", server.url, "--executor", executor, "--n", str(n),
                             "--offset", str(5000 + k * (n + 5))])
            success = real_success_times(server.url, [r["id"] for r in res])
            lat = [r["wall"] - success[r["id"]] for r in res if r["id"] in success]
            rows[f"real ComfyUI, {executor}"] = quantiles(lat)
    return {"n": n, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--url")
    p.add_argument("--executor", default="http")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    a = p.parse_args()
    if a.child:
        return child(a.url, a.executor, a.n, a.offset)
    out = measure(a.n)
    save("latency", out)
    print(f"completion latency (server done -> client knows), {out['n']} sequential jobs")
    for label, q in out["rows"].items():
        print(f"  {label:28} median {q['median_ms']:8.2f} ms   p95 {q['p95_ms']:8.2f} ms   max {q['max_ms']:8.2f} ms")


if __name__ == "__main__":
    main()
