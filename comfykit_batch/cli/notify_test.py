"""``comfykit-batch notify-test MANIFEST``: send the manifest's webhook one sample event, before a night depends on it.

The event is a ``run.finished`` with made-up counts and ``"test": true``, signed like every delivery; one
attempt, no retries, so the receiver's answer is what is printed. Exit codes: 0 the receiver answered
2xx; 1 any other answer, or none (one line); 2 a bad manifest, or one without ``notify:``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace

from ..errors import UsageError
from .args import Parser

#: what the sample event reports: a small run that went well
SAMPLE = {"done": 3, "failed": 0, "skipped": 0, "failed_earlier": 0, "not_run": 0, "failures": {}, "duration": 12.5,
          "test": True}


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="comfykit-batch notify-test",
               description="Send the manifest's notify: webhook one sample run.finished event (marked \"test\": true) "
                           "and print the receiver's HTTP status.",
               epilog="exit codes: 0 the receiver answered 2xx; 1 another answer or none; 2 a bad manifest or no notify:")
    p.add_argument("manifest", help="the manifest whose notify: section to try")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="how long to wait for the answer (default 10)")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv)[1:])
    if args.timeout <= 0:
        raise UsageError(f"notify-test: --timeout must be more than 0, got {args.timeout:g}")
    from ..batch.run.notify import Delivery, Notifier
    from ..batch.spec.manifest import load_manifest

    manifest = load_manifest(args.manifest, check_report_axes=False)
    if manifest.notify is None:
        raise UsageError(f"{args.manifest}: no notify: section (add notify: {{url: ..., secret: ...}})")
    manifest.notify = replace(manifest.notify, events=("run.finished",))  # whatever it subscribes to, the test is sent
    logging.getLogger("comfykit_batch.notify").addHandler(logging.NullHandler())  # the one line below says it all
    once = Delivery(attempts=1, total=args.timeout, request_timeout=args.timeout)
    notifier = Notifier.for_manifest(manifest, delivery=once)
    assert notifier is not None, "a manifest with notify: has a notifier"
    notifier.run_ended("run.finished", SAMPLE)
    notifier.close(timeout=args.timeout + 1)
    outcome, host = notifier.last, manifest.notify.host
    if outcome is None:
        print(f"error: webhook {host}: no answer within {args.timeout:g}s", file=sys.stderr)
        return 1
    if not outcome.ok:
        print(f"error: webhook {host}: test event not delivered ({outcome.described})", file=sys.stderr)
        return 1
    print(f"webhook {host}: test event delivered (HTTP {outcome.status})")
    return 0
