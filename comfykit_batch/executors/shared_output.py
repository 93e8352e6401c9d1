"""A ComfyUI server's outputs read straight from its output folder, where this machine sees that folder.

With the server on the same machine, or a volume shared between its container and the runner's,
the bytes ``/view`` would send are already on this machine's disk. Reading them there spares the
server a request per output (handled on the same event loop that takes prompts: about 0.3 ms of
its CPU each on a CPU server, see ``bench/``) and the client an HTTP download.

It is only ever a shortcut to what the server itself would serve:

- the folder is checked to be the server's own before the first file is read from it: a probe
  file written there must come back, byte for byte, from the server's ``/view``;
- only files of type ``output`` are read from it, by the rule ``/view`` applies (the name, joined
  and normalised, must lie inside the folder) and more: the path, symbolic links resolved, must
  still lie inside it, and the file must be a regular file (a link could point this machine's
  reader at its own files, which the server's ``/view`` would never see; a pipe would block);
- anything else (another type, a name outside the folder, a file not there, not readable or that
  failed to read once) goes through ``/view`` as it would without the folder.
"""

from __future__ import annotations

import logging
import os
import stat
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
        self.folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))  # normalised, so prefixes compare
        self.display = display
        self._real = os.path.realpath(self.folder)  # the folder itself may be a link (a mount point's alias)
        self._checked = False
        self._lock = threading.Lock()
        self._failed: set[str] = set()  # files whose read failed once: the server's /view serves them from then on

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
                                  f"{self.display}'s output folder ({exc.strerror or exc})") from exc
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
                                  "machine sees it, or remove the setting (backends[].server_output_dir, or "
                                  "COMFYUI_OUTPUT_DIR with no backends:)")
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
        if path is None or path in self._failed:
            return None
        self.check(served)
        fh = self._open_regular(path)
        return None if fh is None else self._chunks(fh, path, file.filename)

    def _open_regular(self, path: str) -> BinaryIO | None:
        """The file opened for reading if it is a regular file whose real path lies in the folder, else None."""
        try:
            if not os.path.realpath(path).startswith(self._real + os.sep):
                return None
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a link swapped in meanwhile, a pipe
        except (OSError, ValueError):
            return None  # not there, not readable here, or a name no file has (a NUL): the server decides
        fh = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            fh.close()
            return None
        return fh

    def _chunks(self, fh: BinaryIO, path: str, name: str) -> Iterator[bytes]:
        """A file's chunks; a read error is the server side's (its folder), not the output disk's, and sends
        the next attempt at this file through ``/view``."""
        with fh:
            while True:
                try:
                    block = fh.read(CHUNK)
                except OSError as exc:
                    self._failed.add(path)
                    raise BackendError(f"{self.display}: reading {name} from its output folder: {exc.strerror or exc}",
                                       transient=True, backend=self.display) from exc
                if not block:
                    return
                yield block
