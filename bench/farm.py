"""Start and read a fake_farm child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import ROOT


class Farm:
    def __init__(self, count: int, work: float, output_size: int = 0) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_farm", "--count", str(count), "--work", str(work),
             "--output-size", str(output_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        assert self.proc.stdout is not None
        self.urls: list[str] = json.loads(self.proc.stdout.readline())["urls"]

    def finish(self) -> list[dict[str, Any]]:
        """Stop the farm; each server's busy intervals and finish times (perf_counter, system-wide clock)."""
        out, _ = self.proc.communicate("", timeout=60)
        return json.loads(out.strip().splitlines()[-1])
