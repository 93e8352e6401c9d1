"""Shared pieces of the benchmarks: timing, child processes, the real server, result files."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
INVERT = ROOT / "tests" / "workflows" / "invert.json"
#: the published package's venv lives in the user's cache, not the checkout, so a fresh clone (CI) reuses it
PEER_VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "comfykit_batch" / "bench-comfykit-venv"
PEER_VERSION = "comfykit==0.1.12"


def workdir() -> tempfile.TemporaryDirectory:
    """A scratch folder beside the repo (in the ignored .cache), on the disk results would go to.

    (On some machines /tmp is a much slower file system for creating files.)
    """
    base = ROOT / ".cache" / "bench-tmp"
    base.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=base)


def set_aside(folder: Path, keep: Path) -> None:
    """Empty ``folder`` by moving it into ``keep`` (deleted with it at the end), and make it anew.

    Runs of a benchmark never delete files between measurements. On ext4 without a journal (the
    root file system of this machine class), creating a file passes over every inode of its group
    freed in the last one to six minutes, reading each one's table block: deleting one run's files
    just before the next made each file the next run created cost about 300 us of system CPU
    instead of about 20, which a CPU-per-job figure would charge to the client. A rename frees no
    inode; the whole scratch folder goes when the benchmark ends.
    """
    keep.mkdir(parents=True, exist_ok=True)
    folder.rename(Path(tempfile.mkdtemp(dir=keep)) / folder.name)
    folder.mkdir()


def drop_caches() -> bool:
    """Write dirty pages out and drop the kernel's caches, where allowed (root): the state an earlier run left.

    Inodes freed by an earlier benchmark (minutes ago) are passed over as above while their table
    blocks stay cached; once dropped they are not. Returns whether it was done.
    """
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB).

    VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so a child would report the peak
    of the parent it was forked from.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quantiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {"median_ms": round(statistics.median(values) * 1000, 3), "p95_ms": round(p95 * 1000, 3),
            "max_ms": round(values[-1] * 1000, 3)}


def run_child(args: list[str], *, python: str | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run a benchmark child process that prints one JSON object as its last line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([python or sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=str(ROOT))
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_peer_venv() -> str:
    """A separate venv with the published comfykit, for side-by-side runs; returns its python."""
    py = PEER_VENV / "bin" / "python"
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import comfykit"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", PEER_VERSION], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(py)


def save(section: str, data: Any) -> None:
    """Merge one benchmark's figures into bench/results.json."""
    current: dict[str, Any] = {}
    if RESULTS.exists():
        try:
            current = json.loads(RESULTS.read_text())
        except ValueError:
            current = {}
    current[section] = data
    current["_updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    RESULTS.write_text(json.dumps(current, indent=2) + "\n")


def emit(data: Any) -> None:
    """A child's result: one JSON line on stdout."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
