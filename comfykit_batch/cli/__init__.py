"""The command line: ``comfykit-batch MANIFEST`` and its subcommands.

This package only parses arguments, calls the library and the batch session,
and prints; it is the only part of the project that prints or configures
logging. Each subcommand lives in its own module with a ``main(argv) -> int``;
bad input is raised as a ``ComfyKitError`` and printed here as one line.

Exit codes: 0 all done; 1 some jobs failed or could not run, or the run stopped
(disk full, the managed server would not start, an internal error); 2 manifest
or usage error (nothing ran); 3 ``merge`` found parts that did not merge cleanly (a part it could not
read or rebuild, or two parts that disagree; the index is written all the same); 130 interrupted.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import ComfyKitError, LocalServerError, StorageError

#: subcommand -> module (in this package) whose ``main(argv)`` runs it; anything else is a manifest to run
SUBCOMMANDS: dict[str, str] = {
    "list-params": "params",
    "init": "init",
    "grid": "report",
    "gallery": "report",
    "export": "report",
    "merge": "merge",
    "status": "status",
    "notify-test": "notify_test",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in SUBCOMMANDS:
            module = importlib.import_module(f".{SUBCOMMANDS[args[0]]}", __name__)
            return int(module.main(args))
        from .run import main as run_main

        return run_main(args)
    except LocalServerError as exc:
        print(f"error: the managed local ComfyUI could not start: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:  # the run started and stopped: what finished is kept, a re-run resumes
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ComfyKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `--dry-run | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in the -vv log
        logging.getLogger("comfykit_batch.cli").debug("internal error", exc_info=True)
        print(f"error: internal error ({type(exc).__name__}: {exc}); run again with -vv for the traceback and please "
              "report it", file=sys.stderr)
        return 1
