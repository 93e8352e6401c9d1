"""Turn the manifest's backend specs into executors (and start the managed local server if asked)."""

from __future__ import annotations

import logging
from contextlib import ExitStack

from ..executors.base import Executor
from ..kit import make_comfyui_executor
from ..local_comfyui import LocalComfyUI, default_home
from .manifest import BackendSpec

logger = logging.getLogger("comfykit_batch.backends")


def build_executor(spec: BackendSpec, stack: ExitStack) -> Executor:
    """The executor for one backend; a managed local server is started and stopped with ``stack``."""
    if spec.type == "runninghub":
        from ..executors.runninghub import RunningHubExecutor

        return stack.enter_context(
            RunningHubExecutor(spec.url, spec.api_key or "", concurrency=spec.concurrency,
                               instance_type=spec.instance_type, webhook_url=spec.webhook_url,
                               poll_interval=spec.poll_interval or 3.0)
        )
    url = spec.url
    if spec.managed:
        server = LocalComfyUI(default_home() / "server")
        logger.info("starting the managed local CPU ComfyUI (installs on first use)")
        stack.enter_context(server)
        url = server.url
    ex = make_comfyui_executor(url, spec.executor, api_key=spec.api_key, cookies=spec.cookies, concurrency=spec.concurrency)
    return stack.enter_context(ex)
