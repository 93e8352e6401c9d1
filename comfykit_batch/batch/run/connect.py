"""Turn the manifest's backend specs into executors (starting the managed local server if asked).

Executors are made by the executors layer's factory; this module only maps a
``BackendSpec`` onto it, so the batch layer never names a concrete executor.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from ...defaults import TIMINGS, Timings
from ...executors.base import Executor
from ...executors.factory import create_executor
from ...local_comfyui import managed_server
from ..spec.manifest import BackendSpec


def build_executor(spec: BackendSpec, stack: ExitStack, notice: Callable[[str], None],
                   timings: Timings = TIMINGS) -> Executor:
    """The executor for one backend; a managed local server is started now and stopped with ``stack``.

    ``timings`` are the run's (``RunOptions.timings``): its executors wait as long as its runner.
    """
    url, shared = spec.url, spec.server_output_dir
    if spec.managed:  # its output folder is known: outputs are read there, not downloaded
        server = stack.enter_context(managed_server(notice))
        url, shared = server.url, str(server.output_dir)
    executor = create_executor(
        url, type=spec.type, executor=spec.executor, api_key=spec.api_key, cookies=spec.cookies,
        concurrency=spec.concurrency, instance_type=spec.instance_type, webhook_url=spec.webhook_url,
        poll_interval=spec.poll_interval, server_output_dir=shared, timings=timings,
    )
    return stack.enter_context(executor)
