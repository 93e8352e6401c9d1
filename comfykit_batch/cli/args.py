"""The argument parser every subcommand uses: bad arguments are one line and exit 2, never a usage dump."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (printed as one line by ``cli.main``, exit 2) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")
