"""A ComfyUI server's outputs read straight from its output folder, where this machine sees that folder.

With the server on the same machine, or a volume shared between its container and the runner's,
the bytes ``/view`` would send are already on this machine's disk. Reading them there spares the
server a request per output (handled on the same event loop that takes prompts: about 0.3 ms of
its CPU each on a CPU server, see ``bench/``) and the client an HTTP download.

It is only ever a shortcut to what the server itself would serve:

- the folder is checked to be the server's own before the first file is read from it: a probe
  file written there must come back, byte for byte, from the server's ``/view``;
- only files of type ``output`` are read from it, by the same rule ``/view`` applies (the name,
  joined and normalised, must lie inside the folder);
- anything else (another type, a name outside the folder, a file not there or not readable) goes
  through ``/view`` as it would without the folder.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..errors import BackendError, ConfigError
from ..files import CHUNK
from ..result import OutputFile

logger = logging.getLogger("comfykit_batch.comfyui")

#: what a server serves for a name in its output folder (None: nothing)
Served = Callable[[str], "bytes | None"]


class SharedOutput:
    """The server's output folder as this machine sees it; checked once, then read."""

    def __init__(self, folder: str | os.PathLike[str], display: str) -> None:
        self.folder = os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(folder))))
        self.display = display
        self._checked = False
        self._lock = threading.Lock()

    def check(self, served: Served) -> None:
        """Raise ``ConfigError`` unless the server serves a probe file written into the folder (once per executor)."""
        with self._lock:
            if self._checked:
                return
            name = f"comfykit-probe-{uuid.uuid4().hex}.txt"
            token = uuid.uuid4().hex.encode()
            path = os.path.join(self.folder, name)
            try:
                with open(path, "xb") as fh:
                    fh.write(token)
            except OSError as exc:
                raise ConfigError(f"server_output_dir {self.folder}: cannot write a probe file there to check that it is "
                                  f"{self.display}'s output folder ({exc.strerror or exc})") from None
            try:
                got = served(name)
            finally:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            if got != token:
                raise ConfigError(f"server_output_dir {self.folder}: not the output folder of {self.display} (a file "
                                  "written there is not served by its /view); give the folder it saves to, as this "
                                  "machine sees it, or remove the setting")
            self._checked = True
            logger.info("outputs of %s are read from its output folder %s", self.display, self.folder)

    def path_of(self, file: OutputFile) -> str | None:
        """Where the file lies in the folder, or None when it is to go through ``/view``."""
        if file.type != "output":
            return None
        path = os.path.normpath(os.path.join(self.folder, file.subfolder, file.filename))
        return path if path.startswith(self.folder + os.sep) else None

    def open(self, file: OutputFile, served: Served) -> Iterator[bytes] | None:
        """The file's chunks read from the folder, or None when it is to go through ``/view``."""
        path = self.path_of(file)
        if path is None:
            return None
        self.check(served)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except (OSError, ValueError):
            return None  # not there, not readable here, or a name no file has (a NUL): the server decides
        return _chunks(fh, file.filename, self.display)


def _chunks(fh: BinaryIO, name: str, display: str) -> Iterator[bytes]:
    """A file's chunks; a read error is the server side's (its folder), not the output disk's."""
    with fh:
        while True:
            try:
                block = fh.read(CHUNK)
            except OSError as exc:
                raise BackendError(f"{display}: reading {name} from its output folder: {exc.strerror or exc}",
                                   transient=True, backend=display) from None
            if not block:
                return
            yield block
