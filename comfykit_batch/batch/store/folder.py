"""Where an output folder is (a local path, or a remote URL and its local mirror) and where each output file goes.

Every output file name is made from the job id and the output variable, never from a name the
server sent, so nothing can land outside the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...files import safe_extension, safe_name
from ..spec.location import is_remote_folder, local_home
from .layout import PARTS, PartLike, part_name
from .remote import RemoteFolder


class OutputFolder:
    """Where one output folder is and where its files go; a remote one (``s3://...``) by its local mirror.

    A remote folder is mirrored by a local one (``local``, else one under the user's cache) holding the
    sqlite index, the journal and downloads in progress; finished files and the index go out.
    """

    def __init__(self, root: Path | str, part: PartLike | None = None, *, local: Path | None = None) -> None:
        self.remote = RemoteFolder(str(root)) if is_remote_folder(root) else None
        if self.remote is not None:
            self.root = Path(local or local_home(str(root))).resolve()
        else:
            self.root = Path(root).resolve()
        self.location = str(self.remote or self.root)  # where the results are, as it may be shown
        self.part = part
        self.home = self.root / PARTS / part_name(part) if part is not None else self.root
        self._root_sep = str(self.root) + os.sep

    def shown(self, path: Path) -> str:
        """A path of the folder as it may be shown: under the remote URL for a remote folder (never the local mirror)."""
        return f"{self.location}/{self.relative(path)}" if self.remote is not None else str(path)

    def path_for(self, workflow: str, job_id: str, var: str, n: int, server_name: str) -> Path:
        """Where one output file goes: ``files/<workflow>/<job>_<var>[_n].<ext>``, always inside root."""
        suffix = f"_{n}" if n else ""
        # Every part is sanitised (no separators, no leading dots), so the path cannot leave the folder;
        # the check below is a second lock that costs no system call.
        rel = os.path.join("files", safe_name(workflow), f"{safe_name(job_id)}_{safe_name(var)}{suffix}{safe_extension(server_name)}")
        path = os.path.normpath(os.path.join(self.root, rel))
        if not path.startswith(self._root_sep):
            raise ValueError(f"refusing to write outside the output folder: {rel}")
        return Path(path)

    def relative(self, path: Path) -> str:
        """A path inside the folder as the index keeps it (relative to root)."""
        text = str(path)
        if text.startswith(self._root_sep) and os.sep + ".." not in text:  # what path_for made: no relpath needed
            return text[len(self._root_sep):]
        return os.path.relpath(path, self.root)
