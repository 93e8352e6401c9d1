"""Serve K fake ComfyUI servers from one process (so they do not share the client's GIL).

Prints one JSON line with their URLs, then serves until stdin closes, then prints one JSON line
with each server's busy intervals and prompt finish times.
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.fakes.fake_comfyui import FakeComfyUI


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--work", type=float, default=0.05)
    p.add_argument("--output-size", type=int, default=0)
    a = p.parse_args()
    servers = [FakeComfyUI(work_seconds=a.work).start() for _ in range(a.count)]
    for s in servers:
        s.output_size = a.output_size
    print(json.dumps({"urls": [s.url for s in servers]}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    report = [{"busy": s.busy, "finished": s.finished_at, "farm_cpu": ru.ru_utime + ru.ru_stime} for s in servers]
    for s in servers:
        s.stop()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
