"""A real single-node SLURM for this tier: the one named by ``SLURM_CONF`` if it answers, else one started here.

If SLURM cannot be started the tier fails (never skips): it exists to prove the shipped scripts work.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

START = Path(__file__).resolve().parent / "start_slurm.sh"


def _answers(env: dict[str, str]) -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(state in out.stdout for state in ("idle", "mix", "alloc"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An environment whose ``SLURM_CONF`` points at a running controller with one idle node."""
    env = dict(os.environ)
    if env.get("SLURM_CONF") and _answers(env):
        yield env
        return
    if os.geteuid() != 0:
        pytest.fail("the SLURM tier starts its own slurmctld/slurmd and needs root (or SLURM_CONF of a running one)")
    folder = tmp_path_factory.mktemp("slurm")
    env.update(SLURM_CTLD_PORT=str(_free_port()), SLURMD_PORT=str(_free_port()))
    try:
        proc = subprocess.run([str(START), str(folder)], env=env, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"SLURM could not start: {exc}")
    if proc.returncode != 0:
        pytest.fail(f"SLURM could not start (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    env["SLURM_CONF"] = str(folder / "etc" / "slurm.conf")
    try:
        yield env
    finally:
        subprocess.run([str(START), "--stop", str(folder)], env=env, capture_output=True, timeout=120)
