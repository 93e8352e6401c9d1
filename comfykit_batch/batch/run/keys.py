"""A run's model keys: which model files each job loads, from its workflow, its parameters and its backends.

The scheduler (``schedule.py``), the dry run's plan and the shards all ask one question of a job: which
model files does it load (``models.ModelKey``)? The answer is per workflow a ``ModelKeyer``, made once:
the inputs the workflow shows by itself, plus those the backends that may run it learned from their
``/models`` (``Executor.model_inputs``). Shards use the workflow alone, so every task of an array, whatever
its server, makes the same assignment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from ...errors import BackendError
from ...models import ModelInput, ModelKey, ModelKeyer, static_inputs
from ...workflow import Workflow
from ..spec.sweep import Job
from .backend import Backend

logger = logging.getLogger("comfykit_batch.runner")

KeyOf = Callable[[Job], ModelKey]


def keyer(workflow: Workflow, inputs: Iterable[ModelInput] = ()) -> ModelKeyer:
    """``workflow``'s keyer: its own model inputs and ``inputs`` learned from servers."""
    found = static_inputs(workflow.nodes) | set(inputs)
    return ModelKeyer.of(workflow.nodes, {n: p.targets for n, p in workflow.parameters.items()}, found)


def learned(workflow: Workflow, name: str, backends: Iterable[Backend]) -> set[ModelInput]:
    """What the backends that may run ``workflow`` say its model inputs are (a backend that cannot say is skipped)."""
    found: set[ModelInput] = set()
    for b in backends:
        if b.runs(name) and not b.executor.places_its_own_jobs:
            try:
                found |= b.executor.model_inputs(workflow)
            except BackendError as exc:
                logger.warning("%s: could not read its model folders (%s); using the workflow's own loaders", b.name, exc)
    return found


def key_function(workflows: Mapping[str, Workflow], backends: Iterable[Backend] = ()) -> KeyOf | None:
    """A job's model key, or None when no workflow loads a model file (then there is nothing to group)."""
    backends = list(backends)
    keyers = {name: keyer(wf, learned(wf, name, backends)) for name, wf in workflows.items()}
    if not any(k.fixed or k.params for k in keyers.values()):
        return None

    def key_of(job: Job) -> ModelKey:
        k = keyers.get(job.workflow)
        return k.key(job.params) if k is not None else ()

    return key_of
