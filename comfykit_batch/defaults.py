"""Every default of the library and the batch runner, stated once.

The manifest schema's ``default`` values, the backend specs, the runner and
``ComfyKit`` all read them from here (a test checks the schema against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ExecutorType = Literal["http", "websocket"]
#: accepted spellings of the executor types, everywhere one is read
EXECUTOR_ALIASES: dict[str, ExecutorType] = {"http": "http", "websocket": "websocket", "ws": "websocket"}


@dataclass(frozen=True)
class Defaults:
    """The documented defaults (seconds, counts, URLs)."""

    comfyui_url: str = "http://127.0.0.1:8188"
    runninghub_url: str = "https://www.runninghub.ai"
    #: the library's per-call timeout (ComfyKit, COMFYUI_TIMEOUT)
    library_timeout: float = 3600.0
    #: RunningHub's per-call timeout (the seed's runninghub_timeout)
    runninghub_timeout: float = 300.0
    runninghub_retry_count: int = 3
    runninghub_concurrency: int = 1
    runninghub_poll_interval: float = 3.0
    #: the library's executor type (the seed's); the batch runner prefers the socket
    library_executor: ExecutorType = "http"
    #: ComfyKit's thread pool for the async API, and its ComfyUI executor's connection pool
    library_max_workers: int = 16
    batch_executor: ExecutorType = "websocket"
    #: a batch job's timeout and transient retries (manifest ``defaults``)
    job_timeout: float = 600.0
    retries: int = 3
    #: prompts in flight per ComfyUI backend, so its queue never runs dry
    concurrency: int = 2
    check_nodes: bool = True
    save_previews: bool = False
    #: a backend that stays unreachable this long (seconds) is dropped from the batch
    backend_down_limit: float = 300.0
    #: the order jobs run in: "models" groups jobs that load the same model files on one backend (when any
    #: job loads one), "sweep" keeps the sweep's order (manifest ``defaults.schedule``)
    schedule: str = "models"
    #: model sets a backend keeps loaded at once (a backend's ``model_slots``); raised when durations show more
    model_slots: int = 1
    #: this many jobs in a row failing the same way (kind and node) stop the batch, or drop the one backend they
    #: fail on while others work (manifest ``defaults.stop_after_failures``; 0 never stops)
    stop_after_failures: int = 20
    #: what a model load and a job are assumed to cost (seconds) until a backend has shown its own
    model_switch_cost: float = 10.0
    model_job_time: float = 2.0


DEFAULTS = Defaults()


@dataclass(frozen=True)
class Timings:
    """Every wait of the executors and the batch runner (seconds), in one object passed down to them.

    Production code takes ``TIMINGS``; a test builds its own (``Timings(lost_check=0.2)``) and hands it to
    ``create_executor`` or the session instead of patching module constants, so no test waits on a real
    timer longer than it chooses.
    """

    #: how often a job waiting for its prompt asks whether the server still has it (lost on a restart)
    lost_check: float = 5.0
    #: a WebSocket job with a live socket still reads /history this often, in case an event was missed
    socket_safety_poll: float = 5.0
    #: a WebSocket job waits this long for the socket before it submits anyway (and polls /history instead)
    socket_connect_wait: float = 5.0
    #: HTTP polling: wait this fraction of the time already waited, within [poll_min, an executor's poll_max]
    poll_fraction: float = 0.25
    poll_min: float = 0.01
    #: the shortest pause between two looks at a prompt whose expected end has passed
    poll_floor: float = 0.001
    #: how often a wait that cannot block on the cancel event itself (a WebSocket job's event queue) looks at it
    cancel_check: float = 0.1
    #: a request that is safe to repeat (RunningHub's status, outputs, uploads; a refused create) and failed
    #: transiently is sent again after retry_first, doubling up to retry_max
    retry_first: float = 0.5
    retry_max: float = 8.0
    #: a backend that failed: first pause before it is probed, doubling up to pause_max
    pause_first: float = 5.0
    pause_max: float = 60.0
    #: a transient download failure is tried again after download_backoff * 2**attempt
    download_backoff: float = 0.2


TIMINGS = Timings()


def executor_type(value: str, *, where: str = "executor_type") -> ExecutorType:
    """The canonical executor type for a user's spelling; raises ``ConfigError`` naming ``where``."""
    from .errors import ConfigError

    try:
        return EXECUTOR_ALIASES[str(value).strip().lower()]
    except KeyError:
        raise ConfigError(f"{where} must be 'http' or 'websocket', got {value!r}") from None


#: environment variables naming the user's ComfyUI server, in the order they are read (library and batch alike)
COMFYUI_URL_ENV = ("COMFYUI_URL", "COMFYUI_BASE_URL")


def env_comfyui_url() -> str | None:
    """The ComfyUI URL the environment names, or None: ``COMFYUI_URL``, then the seed's ``COMFYUI_BASE_URL``.

    The library falls back to ``Defaults.comfyui_url``; a manifest without ``backends:`` falls back
    to the managed local server.
    """
    import os

    for name in COMFYUI_URL_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


#: the environment variable naming that server's output folder as this machine sees it (beside ``COMFYUI_URL``)
COMFYUI_OUTPUT_DIR_ENV = "COMFYUI_OUTPUT_DIR"


def env_comfyui_output_dir() -> str | None:
    """The folder ``COMFYUI_OUTPUT_DIR`` names, made absolute against the working folder, or None."""
    import os

    value = os.environ.get(COMFYUI_OUTPUT_DIR_ENV, "").strip()
    return os.path.abspath(os.path.expanduser(value)) if value else None
