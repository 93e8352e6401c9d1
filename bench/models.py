"""Model-aware scheduling: makespan and model loads of scheduling policies, side by side in one run.

Fake ComfyUI servers (one process of their own, real HTTP on loopback) charge ``--switch`` seconds when
a prompt's model set is not the one they hold (one slot) and ``--job`` seconds of work per prompt. The
workflow loads a checkpoint chosen by ``$ckpt`` and a LoRA whose strength is swept; the sweep is
``keys`` checkpoints x 2 strengths x ``prompts`` prompts, run twice: the model axis varying fastest
(the grid's last key) and slowest (its first). Every policy is a real run through ``run_manifest``
(runner, store, downloads), with the manifest's default concurrency:

- ``sweep``: the runner before model scheduling (``RunOptions(schedule="sweep")``): the next job in
  sweep order goes to the least-loaded backend;
- ``swarm``: a SwarmUI-style policy (``SwarmLike`` below, through ``RunOptions(scheduler_factory=...)``):
  jobs in sweep order, the next one to a free backend that holds its model, else the least-loaded one;
- ``models``: the new scheduler (the default whenever a job loads a model file);
- the lower bound: (jobs x job time + one load per key) / backends (with fewer keys than backends,
  each backend used loads at least once: the best over how many are used).

Makespan is the run's wall (``Summary.wall``); switches per backend are the fakes' own counts. A second
table replays the policies on a virtual clock (``simulate.replay``, one job at a time per backend) for
1, 4 and 16 backends x 2, 6 and 24 keys; then the loads per shard of model sharding beside hash
sharding; then the CLI's CPU per job with ``--schedule sweep`` and ``models`` on instant fakes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.common import ROOT, save, workdir
from comfykit_batch.batch.run.schedule import Item, ModelScheduler, Scheduler
from comfykit_batch.models import ModelKey

LORA = "detail.safetensors"
STRENGTHS = [0.6, 1.0]
ORDERS = ("model axis fastest", "model axis slowest")
POLICIES = ("sweep", "swarm", "models")
TARGETS = {"lower_bound": 1.25, "vs_sweep_fastest": 4.0, "vs_swarm_slowest": 1.3}


def ckpts(keys: int) -> list[str]:
    return [f"m{i}.safetensors" for i in range(keys)]


def workflow() -> dict[str, Any]:
    """Checkpoint ($ckpt) -> LoRA (fixed file, $strength) -> prompt ($prompt); an image saved (where the fake works)."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m0.safetensors"}, "_meta": {"title": "$ckpt.ckpt_name"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": LORA, "strength_model": 1.0, "strength_clip": 1.0,
                                                     "model": ["1", 0], "clip": ["1", 1]},
              "_meta": {"title": "$strength.strength_model"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 1]}, "_meta": {"title": "$prompt.text"}},
        "4": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "m"}, "_meta": {"title": "$output.image"}},
    }


# -- the fake servers ---------------------------------------------------------------------------------
def serve(count: int, work: float, switch: float, keys: int) -> None:
    """The farm child: ``count`` fakes with model files; one JSON line of URLs, then (stdin closed) their counts."""
    from tests.fakes.fake_comfyui import FakeComfyUI

    files = {"checkpoints": ckpts(keys), "loras": [LORA]}
    servers = [FakeComfyUI(work_seconds=work, model_files=files, switch_cost=switch, slots=1) for _ in range(count)]
    for s in servers:
        s.classes["CLIPTextEncode"] = {"text": ["STRING", {"multiline": True}], "clip": ["CLIP"]}
        s.start()
    print(json.dumps({"urls": [s.url for s in servers]}), flush=True)
    sys.stdin.read()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    report = [{"switches": s.switches, "loads": len(s.loads), "prompts": len(s.model_log), "farm_cpu": ru.ru_utime + ru.ru_stime}
              for s in servers]
    for s in servers:
        s.stop()
    print(json.dumps(report), flush=True)


class ModelFarm:
    """The farm child process (so the fakes do not share the client's interpreter)."""

    def __init__(self, count: int, work: float, switch: float, keys: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.models", "--serve", "--count", str(count), "--job", str(work), "--switch", str(switch),
             "--keys", str(keys)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        assert self.proc.stdout is not None
        self.urls: list[str] = json.loads(self.proc.stdout.readline())["urls"]

    def finish(self) -> list[dict[str, Any]]:
        out, _ = self.proc.communicate("", timeout=60)
        return json.loads(out.strip().splitlines()[-1])


# -- the SwarmUI-style policy ---------------------------------------------------------------------------
class SwarmLike:
    """SwarmUI-style: jobs in sweep order; the next one goes to a free backend that holds its model, else to the least-loaded.

    The runner asks its free backends (a slot free) least loaded first. Asked by ``backend``, this gives it
    the next job in sweep order if ``backend`` holds the job's model (the key of the last job given to it)
    or no other free backend does; otherwise nothing, and the free backend that holds it takes it when
    asked next. Only the head of the queue is ever considered: the order is the sweep's.
    """

    def __init__(self, key_of: Callable[[Any], ModelKey], slots: Mapping[str, int], concurrency: int) -> None:
        self.key_of = key_of
        self.slots = {b: max(n, 1) for b, n in slots.items()}
        self.concurrency = concurrency
        self.queue: deque[Item] = deque()
        self.held: dict[str, list[ModelKey]] = {b: [] for b in slots}  # most recent last
        self.running: dict[str, int] = dict.fromkeys(slots, 0)
        self.on: dict[str, str] = {}  # job id -> its backend
        self.gone: set[str] = set()
        self.switches: dict[str, int] = dict.fromkeys(slots, 0)

    @classmethod
    def factory(cls, concurrency: int) -> Callable[[Callable[[Any], ModelKey], Mapping[str, int]], Scheduler]:
        return lambda key_of, slots: cls(key_of, slots, concurrency)

    def __len__(self) -> int:
        return len(self.queue)

    def add(self, job: Any, attempt: int = 0, avoid: str | None = None) -> None:
        self.queue.append((job, attempt, avoid))

    def _free(self, b: str) -> bool:
        return b not in self.gone and self.running[b] < self.concurrency

    def take(self, backend: str, may_run: Callable[[str], bool], now: float, force: bool = False,
             busy: bool = False) -> Item | None:
        at = next((i for i, item in enumerate(self.queue) if may_run(item[0].workflow)), None)
        if at is None:
            return None
        job = self.queue[at][0]
        key = self.key_of(job)
        if not force and key not in self.held[backend] and any(
                b != backend and self._free(b) and key in held for b, held in self.held.items()):
            return None
        item = self.queue[at]
        del self.queue[at]
        held = self.held[backend]
        if key and key not in held:
            self.switches[backend] += 1
        if key in held:
            held.remove(key)
        held.append(key)
        del held[:-self.slots[backend]]
        self.running[backend] += 1
        self.on[job.id] = backend
        return item

    def ended(self, job: Any, now: float, ok: bool) -> None:
        b = self.on.pop(job.id, None)
        if b is not None:
            self.running[b] -= 1

    def forget(self, backend: str) -> None:
        self.gone.add(backend)
        self.held[backend] = []

    def workflows(self) -> set[str]:
        return {item[0].workflow for item in self.queue}

    def remove_workflow(self, workflow: str) -> list[Item]:
        gone = [item for item in self.queue if item[0].workflow == workflow]
        self.queue = deque(item for item in self.queue if item[0].workflow != workflow)
        return gone

    def loads(self) -> Mapping[str, int]:
        return self.switches


# -- figures ---------------------------------------------------------------------------------------------
def lower_bound(jobs: int, keys: int, backends: int, switch: float, job: float) -> float:
    """(jobs x job + one load per key) / backends; each backend used loads at least once, so with fewer keys
    than backends the best over how many backends are used (and never less than one load and one job)."""
    best = min((jobs * job + max(keys, m) * switch) / m for m in range(1, backends + 1))
    return max(best, switch + job)


def manifest(path: Path, urls: list[str], keys: int, prompts: int, fastest: bool, extra: Mapping[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wf = path.parent / "models_wf.json"
    wf.write_text(json.dumps(workflow()))
    axes = {"ckpt": ckpts(keys), "strength": STRENGTHS, "prompt": [f"prompt {i}" for i in range(prompts)]}
    grid = {k: axes[k] for k in (("prompt", "strength", "ckpt") if fastest else ("ckpt", "strength", "prompt"))}
    doc = {"name": "models", "output": str(path.parent / "out"), "defaults": {"timeout": 300, **(extra or {})},
           "backends": [{"name": f"b{i}", "url": u} for i, u in enumerate(urls)],
           "workflows": [{"name": "w", "source": str(wf)}], "report": {"gallery": False},
           "sweep": {"grid": grid}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_policy(policy: str, fastest: bool, *, backends: int, keys: int, prompts: int, switch: float, job: float,
               tmp: Path) -> dict[str, Any]:
    """One real run of ``policy`` on fresh fakes: the summary's wall and the fakes' switches."""
    from comfykit_batch.batch.run.session import RunOptions, run_manifest
    from comfykit_batch.defaults import DEFAULTS

    options = {"sweep": RunOptions(schedule="sweep"), "swarm": RunOptions(scheduler_factory=SwarmLike.factory(DEFAULTS.concurrency)),
               "models": RunOptions()}[policy]
    farm = ModelFarm(backends, job, switch, keys)
    try:
        path = manifest(tmp / f"{policy}-{'fast' if fastest else 'slow'}" / "m.yaml", farm.urls, keys, prompts, fastest)
        summary = run_manifest(path, options)
    finally:
        report = farm.finish()
    return {"wall_s": round(summary.wall, 2), "done": summary.done, "total": summary.total,
            "switches": [r["switches"] for r in report], "prompts": [r["prompts"] for r in report],
            "scheduler_loads": [v.model_loads for v in summary.backends.values()]}


def real_runs(backends: int, keys: int, prompts: int, switch: float, job: float, tmp: Path) -> dict[str, Any]:
    jobs = keys * len(STRENGTHS) * prompts
    bound = lower_bound(jobs, keys, backends, switch, job)
    rows: dict[str, dict[str, Any]] = {}
    for order in ORDERS:
        for policy in POLICIES:
            r = run_policy(policy, order == ORDERS[0], backends=backends, keys=keys, prompts=prompts, switch=switch, job=job,
                           tmp=tmp)
            r["x_lower_bound"] = round(r["wall_s"] / bound, 2)
            rows[f"{order}: {policy}"] = r
    new = {o: rows[f"{o}: models"]["wall_s"] for o in ORDERS}
    return {"backends": backends, "keys": keys, "jobs": jobs, "switch_s": switch, "job_s": job, "lower_bound_s": round(bound, 2),
            "rows": rows,
            "new_x_lower_bound": {o: rows[f"{o}: models"]["x_lower_bound"] for o in ORDERS},
            "speedup_vs_sweep_fastest": round(rows[f"{ORDERS[0]}: sweep"]["wall_s"] / new[ORDERS[0]], 2),
            "speedup_vs_swarm_slowest": round(rows[f"{ORDERS[1]}: swarm"]["wall_s"] / new[ORDERS[1]], 2)}


def sweep_keys(keys: int, prompts: int, fastest: bool) -> list[ModelKey]:
    """The sweep's model keys in sweep order (the same grid as the real runs)."""
    other = len(STRENGTHS) * prompts
    order = [m for _ in range(other) for m in range(keys)] if fastest else [m for m in range(keys) for _ in range(other)]
    return [tuple(sorted((ckpts(keys)[m], LORA))) for m in order]


def replayed(backend_counts: list[int], key_counts: list[int], prompts: int, switch: float, job: float) -> dict[str, Any]:
    """Virtual-clock replays (one job at a time per backend) of the new scheduler, SwarmUI-style and sweep order."""
    from comfykit_batch.batch.run.simulate import replay

    rows = []
    for b in backend_counts:
        slots = {f"b{i}": 1 for i in range(b)}
        for k in key_counts:
            keys_f = sweep_keys(k, prompts, True)
            bound = lower_bound(len(keys_f), k, b, switch, job)
            row: dict[str, Any] = {"backends": b, "keys": k, "jobs": len(keys_f), "lower_bound_s": round(bound, 2)}
            for order, fastest in zip(ORDERS, (True, False), strict=True):
                keys = sweep_keys(k, prompts, fastest)
                for name, sched in (("models", ModelScheduler), ("swarm", SwarmLike.factory(1)), ("sweep", None)):
                    r = replay(keys, slots, switch=switch, job=job, scheduler=sched)
                    row[f"{order}: {name}"] = {"makespan_s": round(r.makespan, 2), "x_lower_bound": round(r.makespan / bound, 2),
                                               "loads": sum(r.loads.values())}
            rows.append(row)
    return {"switch_s": switch, "job_s": job, "prompts": prompts, "rows": rows}


def shards(keys: int, prompts: int, counts: list[int], tmp: Path) -> dict[str, Any]:
    """Loads per shard: model shards (``loads_per_shard`` on the key counts) beside hashing job ids (``shard_of``)."""
    from comfykit_batch.batch.run.keys import key_function
    from comfykit_batch.batch.run.session import prepare
    from comfykit_batch.batch.spec.shard import loads_per_shard, model_shards, shard_of

    prepared = prepare(manifest(tmp / "shards" / "m.yaml", ["http://127.0.0.1:1"], keys, prompts, True))
    key_of = key_function(prepared.workflows)
    assert key_of is not None
    jobs = [(j.id, key_of(j)) for j in prepared.sweep]
    per_key = Counter(k for _, k in jobs)
    out: dict[str, Any] = {"jobs": len(jobs), "keys": len(per_key), "rows": {}}
    for n in counts:
        model = loads_per_shard(per_key, n)
        hashed: list[set[ModelKey]] = [set() for _ in range(n)]
        sizes = [0] * n
        for jid, key in jobs:
            s = shard_of(jid, n)
            hashed[s].add(key)
            sizes[s] += 1
        hash_loads = [len(h) for h in hashed]
        out["rows"][str(n)] = {
            "model": {"loads_total": sum(model), "loads_max": max(model), "sizes": _span(model_shards(per_key, n).sizes())},
            "hash": {"loads_total": sum(hash_loads), "loads_max": max(hash_loads), "sizes": _span(sizes)}}
    return out


def _span(sizes: list[int]) -> str:
    return f"{min(sizes)}-{max(sizes)}"


# -- client CPU ------------------------------------------------------------------------------------------
def children_cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


def cli_run_cpu(mode: str, backends: int, keys: int, prompts: int, folder: Path) -> tuple[float, float]:
    """One CLI run (its own process) on fresh instant fakes: its (user, system) CPU seconds, from the kernel's account."""
    farm = ModelFarm(backends, 0.0, 0.0, keys)
    try:
        path = manifest(folder / "m.yaml", farm.urls, keys, prompts, True)
        user0, sys0 = children_cpu()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "comfykit_batch", str(path), "-q", "--schedule", mode],
                              cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600)
        user1, sys1 = children_cpu()
    finally:
        farm.finish()
    if proc.returncode != 0:
        raise RuntimeError(f"CLI exited {proc.returncode}: {proc.stderr[-2000:]}")
    return user1 - user0, sys1 - sys0


def cli_cpu(backends: int, keys: int, prompts: int, rounds: int, tmp: Path, small_prompts: int = 5) -> dict[str, Any]:
    """The CLI with ``--schedule sweep`` and ``models`` on instant fakes, a run of ``prompts`` and a small one of
    ``small_prompts`` per round, interleaved (order rotated); medians over the rounds.

    ``cpu_ms_per_job``: the big run's whole process (start-up included) / its jobs; ``marginal``: per job beyond
    the small run's (start-up and imports excluded, as ``client_overhead.py``'s). Nothing is deleted between runs
    (see ``common.set_aside``): each run has its own folder in ``tmp``.
    """
    per_run = len(STRENGTHS) * keys
    sizes = {"big": prompts * per_run, "small": small_prompts * per_run}
    runs = [(mode, size) for size in sizes for mode in ("sweep", "models")]
    cpu: dict[tuple[str, str], list[tuple[float, float]]] = {r: [] for r in runs}
    for r in range(rounds):
        shift = r % len(runs)
        for mode, size in runs[shift:] + runs[:shift]:
            folder = tmp / f"cpu-{mode}-{size}-{r}"
            cpu[mode, size].append(cli_run_cpu(mode, backends, keys, sizes[size] // per_run, folder))
    total = {k: statistics.median(u + s for u, s in v) for k, v in cpu.items()}
    user = {k: statistics.median(u for u, _ in v) for k, v in cpu.items()}
    modes = ("sweep", "models")
    big, small = sizes["big"], sizes["small"]
    per_job = {m: round(1000 * total[m, "big"] / big, 3) for m in modes}
    marginal = {m: round(1000 * (total[m, "big"] - total[m, "small"]) / (big - small), 3) for m in modes}
    return {"jobs": big, "small_jobs": small, "backends": backends, "keys": keys, "rounds": rounds,
            "cpu_ms_per_job": per_job, "user_ms_per_job": {m: round(1000 * user[m, "big"] / big, 3) for m in modes},
            "marginal_cpu_ms_per_job": marginal, "small_run_cpu_ms": {m: round(1000 * total[m, "small"]) for m in modes},
            "all_cpu_ms_per_job": {m: [round(1000 * (u + s) / big, 3) for u, s in cpu[m, "big"]] for m in modes},
            "models_minus_sweep_ms": round(per_job["models"] - per_job["sweep"], 3),
            "marginal_models_minus_sweep_ms": round(marginal["models"] - marginal["sweep"], 3),
            "scheduler_us_per_job": scheduler_cost(keys, big, backends)}


def scheduler_cost(keys: int, jobs: int, backends: int, repeat: int = 20) -> float:
    """The new scheduler's own CPU per job (us): ``add``, ``take`` and ``ended`` of every job, 2 in flight per backend."""
    from comfykit_batch.batch.spec.sweep import Job

    ks = sweep_keys(keys, jobs // keys // len(STRENGTHS), True)
    todo = [Job(str(i), "w", {}, seq=i) for i in range(len(ks))]
    names = [f"b{i}" for i in range(backends)]

    def once() -> None:
        s = ModelScheduler(lambda j: ks[j.seq], dict.fromkeys(names, 1))
        for j in todo:
            s.add(j)
        now = 0.0
        running: dict[str, deque[Job]] = {b: deque() for b in names}
        while len(s) or any(running.values()):
            for b in names:
                while len(running[b]) < 2:
                    item = s.take(b, lambda _: True, now, force=not any(running.values()), busy=bool(running[b]))
                    if item is None:
                        break
                    running[b].append(item[0])
            for b in names:
                if running[b]:
                    now += 0.1
                    s.ended(running[b].popleft(), now, True)

    t0 = time.process_time()
    for _ in range(repeat):
        once()
    return round(1e6 * (time.process_time() - t0) / repeat / len(todo), 2)


# -- the whole bench -------------------------------------------------------------------------------------
def measure(*, backends: int = 4, keys: int = 6, prompts: int = 20, switch: float = 1.0, job: float = 0.1,
            table_backends: tuple[int, ...] = (1, 4, 16), table_keys: tuple[int, ...] = (2, 6, 24),
            shard_counts: tuple[int, ...] = (4, 64), cpu_prompts: int = 80, cpu_rounds: int = 7,
            cpu_small_prompts: int = 5) -> dict[str, Any]:
    """Every part; CPU first, then the real runs, in one scratch folder deleted at the end (so no run of this
    bench creates files just after it deleted some: see ``common.set_aside``)."""
    with workdir() as name:
        tmp = Path(name)
        cpu = cli_cpu(2, keys, cpu_prompts, cpu_rounds, tmp, cpu_small_prompts)
        real = real_runs(backends, keys, prompts, switch, job, tmp)
        return {"real": real, "replay": replayed(list(table_backends), list(table_keys), prompts, switch, job),
                "shards": shards(keys, prompts, list(shard_counts), tmp), "cpu": cpu}


def _ok(value: float, target: float, at_least: bool) -> str:
    return "met" if (value >= target if at_least else value <= target) else "MISSED"


def report(out: dict[str, Any]) -> str:
    runs = out["real"]
    lines = [f"Model scheduling, real runs through run_manifest: {runs['backends']} fake backends (switch {runs['switch_s']} s, "
             f"job {runs['job_s']} s, concurrency 2), {runs['keys']} model keys x {len(STRENGTHS)} LoRA strengths x "
             f"{runs['jobs'] // runs['keys'] // len(STRENGTHS)} prompts = {runs['jobs']} jobs; lower bound {runs['lower_bound_s']} s",
             f"  {'order':20} {'policy':8} {'makespan s':>10} {'x bound':>8} {'switches per backend (fakes)':>30}"]
    for label, r in runs["rows"].items():
        order, policy = label.split(": ")
        lines.append(f"  {order:20} {policy:8} {r['wall_s']:>10} {r['x_lower_bound']:>8} {'/'.join(map(str, r['switches'])):>30}")
    xb = runs["new_x_lower_bound"]
    sf, ss = runs["speedup_vs_sweep_fastest"], runs["speedup_vs_swarm_slowest"]
    lines += [f"  new vs lower bound: {xb[ORDERS[0]]}x (fastest), {xb[ORDERS[1]]}x (slowest); target <= {TARGETS['lower_bound']}x in "
              f"both: {_ok(max(xb.values()), TARGETS['lower_bound'], False)}",
              f"  new vs sweep order, model axis fastest: {sf}x faster; target >= {TARGETS['vs_sweep_fastest']}x: "
              f"{_ok(sf, TARGETS['vs_sweep_fastest'], True)}",
              f"  new vs SwarmUI-style, model axis slowest: {ss}x faster; target >= {TARGETS['vs_swarm_slowest']}x: "
              f"{_ok(ss, TARGETS['vs_swarm_slowest'], True)}"]
    rp = out["replay"]
    lines += ["", f"Replayed on a virtual clock (simulate.replay: one job at a time per backend, switch {rp['switch_s']} s, "
                  f"job {rp['job_s']} s; keys x {len(STRENGTHS)} x {rp['prompts']} jobs): makespan s (x lower bound)",
              f"  {'backends':>8} {'keys':>5} {'jobs':>5} {'bound':>7} | {'fastest: models':>16} {'swarm':>14} {'sweep':>15} | "
              f"{'slowest: models':>16} {'swarm':>14} {'sweep':>15}"]
    for r in rp["rows"]:
        cells = [f"{r[f'{o}: {p}']['makespan_s']} ({r[f'{o}: {p}']['x_lower_bound']})"
                 for o in ORDERS for p in ("models", "swarm", "sweep")]
        lines.append(f"  {r['backends']:>8} {r['keys']:>5} {r['jobs']:>5} {r['lower_bound_s']:>7} | {cells[0]:>16} {cells[1]:>14} "
                     f"{cells[2]:>15} | {cells[3]:>16} {cells[4]:>14} {cells[5]:>15}")
    sh = out["shards"]
    lines += ["", f"Loads per shard ({sh['jobs']} jobs, {sh['keys']} keys): model shards (loads_per_shard) vs hashing job ids (shard_of)",
              f"  {'N':>4} {'model: total':>13} {'max':>4} {'jobs/shard':>10} | {'hash: total':>12} {'max':>4} {'jobs/shard':>10}"]
    for n, r in sh["rows"].items():
        m, h = r["model"], r["hash"]
        lines.append(f"  {n:>4} {m['loads_total']:>13} {m['loads_max']:>4} {m['sizes']:>10} | {h['loads_total']:>12} "
                     f"{h['loads_max']:>4} {h['sizes']:>10}")
    cp = out["cpu"]
    d, dm = cp["models_minus_sweep_ms"], cp["marginal_models_minus_sweep_ms"]
    small_label = f"a {cp['small_jobs']}-job run, ms (start-up)"
    lines += ["", f"Client CPU per job (the CLI's process, user + system; {cp['jobs']} jobs on {cp['backends']} instant fakes, "
                  f"a model key per job; medians of {cp['rounds']} interleaved rounds):",
              f"  {'':34} {'sweep':>8} {'models':>8} {'models - sweep':>15}",
              f"  {'ms per job, start-up included':34} {cp['cpu_ms_per_job']['sweep']:>8} {cp['cpu_ms_per_job']['models']:>8} "
              f"{d:>+15.3f}",
              f"  {'  of which user':34} {cp['user_ms_per_job']['sweep']:>8} {cp['user_ms_per_job']['models']:>8} "
              f"{cp['user_ms_per_job']['models'] - cp['user_ms_per_job']['sweep']:>+15.3f}",
              f"  {'marginal ms per job':34} {cp['marginal_cpu_ms_per_job']['sweep']:>8} "
              f"{cp['marginal_cpu_ms_per_job']['models']:>8} {dm:>+15.3f}",
              f"  {small_label:34} {cp['small_run_cpu_ms']['sweep']:>8} "
              f"{cp['small_run_cpu_ms']['models']:>8} {cp['small_run_cpu_ms']['models'] - cp['small_run_cpu_ms']['sweep']:>+15}",
              f"  target: models - sweep <= +0.1 ms per job: {_ok(d, 0.1, False)} (start-up included), {_ok(dm, 0.1, False)} "
              f"(marginal: per job beyond the {cp['small_jobs']}-job run's)",
              f"  the scheduler's own CPU (add, take, ended of each job, in process): {cp['scheduler_us_per_job']} us per job",
              f"  every {cp['jobs']}-job run, ms per job: sweep {cp['all_cpu_ms_per_job']['sweep']}, "
              f"models {cp['all_cpu_ms_per_job']['models']}"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--serve", action="store_true", help="(internal) the fake servers' process")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--backends", type=int, default=4)
    p.add_argument("--keys", type=int, default=6)
    p.add_argument("--prompts", type=int, default=20)
    p.add_argument("--switch", type=float, default=1.0)
    p.add_argument("--job", type=float, default=0.1)
    p.add_argument("--cpu-prompts", type=int, default=80)
    p.add_argument("--cpu-rounds", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="a few seconds: tiny sizes, costs and rounds (figures not meaningful)")
    a = p.parse_args()
    if a.serve:
        return serve(a.count, a.job, a.switch, a.keys)
    t0 = time.monotonic()
    if a.quick:
        out = measure(backends=2, keys=2, prompts=2, switch=0.05, job=0.01, table_backends=(1, 4), table_keys=(2, 6),
                      cpu_prompts=2, cpu_rounds=1, cpu_small_prompts=1)
    else:
        out = measure(backends=a.backends, keys=a.keys, prompts=a.prompts, switch=a.switch, job=a.job,
                      cpu_prompts=a.cpu_prompts, cpu_rounds=a.cpu_rounds)
    save("models", out)
    print(report(out))
    print(f"({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
