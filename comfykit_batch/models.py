"""Which model files a job loads: its *model key*, known from the workflow and the job's parameters alone.

Loading a checkpoint, a LoRA or a VAE costs a GPU server seconds to minutes, far more than a job's own
client work, so the batch runner groups jobs that load the same files. A workflow's *model inputs* are
the node inputs whose values name model files:

- the inputs of ComfyUI's core loader classes (``CORE_LOADERS``, the documented list);
- any input whose value in the workflow ends in a model file's extension (``MODEL_EXTENSIONS``);
- on a server that lists its models (``GET /models``), any combo input whose choices are that folder's
  files (``learned_inputs``; executors call it with what they fetched).

A job's key is the sorted tuple of the values its parameters give those inputs; ``()`` when it loads
nothing. Computing it needs no server and no other job, so a sweep's keys are known without building it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: a job's model key: the model files it loads, sorted (empty when it loads none)
ModelKey = tuple[str, ...]
#: (node id, input name) of an input that names a model file
ModelInput = tuple[str, str]

#: ComfyUI's core loader classes, each model-file input with the ``models/`` folder it reads
CORE_LOADERS: Mapping[str, Mapping[str, str]] = {
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
    "CheckpointLoader": {"ckpt_name": "checkpoints"},
    "ImageOnlyCheckpointLoader": {"ckpt_name": "checkpoints"},
    "unCLIPCheckpointLoader": {"ckpt_name": "checkpoints"},
    "VAELoader": {"vae_name": "vae"},
    "LoraLoader": {"lora_name": "loras"},
    "LoraLoaderModelOnly": {"lora_name": "loras"},
    "UNETLoader": {"unet_name": "diffusion_models"},
    "CLIPLoader": {"clip_name": "text_encoders"},
    "DualCLIPLoader": {"clip_name1": "text_encoders", "clip_name2": "text_encoders"},
    "TripleCLIPLoader": {"clip_name1": "text_encoders", "clip_name2": "text_encoders", "clip_name3": "text_encoders"},
    "CLIPVisionLoader": {"clip_name": "clip_vision"},
    "ControlNetLoader": {"control_net_name": "controlnet"},
    "DiffControlNetLoader": {"control_net_name": "controlnet"},
    "UpscaleModelLoader": {"model_name": "upscale_models"},
    "StyleModelLoader": {"style_model_name": "style_models"},
    "GLIGENLoader": {"gligen_name": "gligen"},
    "HypernetworkLoader": {"hypernetwork_name": "hypernetworks"},
    "PhotoMakerLoader": {"photomaker_model_name": "photomaker"},
}

#: a string value ending in one of these names a model file, whatever node reads it
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".pkl", ".onnx")


def _names_a_file(value: Any) -> bool:
    return isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS)


def static_inputs(nodes: Mapping[str, Any]) -> frozenset[ModelInput]:
    """The model inputs a workflow shows by itself: core loaders' inputs, and values that are model file names."""
    found: set[ModelInput] = set()
    for nid, node in nodes.items():
        inputs = node.get("inputs") or {}
        for field_name in CORE_LOADERS.get(node.get("class_type", ""), {}):
            found.add((nid, field_name))
        found.update((nid, k) for k, v in inputs.items() if _names_a_file(v))
    return frozenset(found)


def learned_inputs(nodes: Mapping[str, Any], object_info: Mapping[str, Any],
                   folders: Mapping[str, Iterable[str]]) -> frozenset[ModelInput]:
    """The inputs whose server-side choices are a model folder's files (from ``/object_info`` and ``/models``).

    An input counts when most of its combo's choices are files of one folder: ``VAELoader``'s list has
    extras such as ``pixel_space`` beside the files, a sampler's names are no folder's.
    """
    files = [frozenset(f) for f in folders.values()]
    found: set[ModelInput] = set()
    for nid, node in nodes.items():
        described = object_info.get(node.get("class_type", ""))
        if not isinstance(described, Mapping):
            continue
        for field_name, spec in _input_specs(described):
            choices = _choices(spec)
            if choices and any(len(choices & f) * 2 >= len(choices) for f in files if f):
                found.add((nid, field_name))
    return frozenset(found)


def _input_specs(described: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    inputs = described.get("input")
    for section in ("required", "optional"):
        part = inputs.get(section) if isinstance(inputs, Mapping) else None
        yield from part.items() if isinstance(part, Mapping) else ()


def _choices(spec: Any) -> frozenset[str]:
    """A combo input's choices: ``[[a, b]]`` (older servers) or ``["COMBO", {"options": [a, b]}]``."""
    if not isinstance(spec, Sequence) or not spec:
        return frozenset()
    head = spec[0]
    if isinstance(head, list):
        return frozenset(x for x in head if isinstance(x, str))
    if head == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        return frozenset(x for x in spec[1].get("options") or () if isinstance(x, str))
    return frozenset()


@dataclass(frozen=True)
class ModelKeyer:
    """A workflow's model inputs, split into those a parameter sets and those fixed in the workflow.

    ``key(params)`` is then a few dictionary reads: the sweep's millionth job costs what its first does.
    """

    fixed: tuple[str, ...]  # values of model inputs no parameter sets
    params: tuple[str, ...]  # parameters that set a model input
    defaults: Mapping[str, str]  # such a parameter's value in the workflow, for a job that does not set it

    @classmethod
    def of(cls, nodes: Mapping[str, Any], targets: Mapping[str, Sequence[tuple[str, str]]],
           inputs: Iterable[ModelInput]) -> ModelKeyer:
        """``targets``: each parameter's (node, input) pairs; ``inputs``: the workflow's model inputs."""
        inputs = set(inputs)
        by_target = {t: name for name, ts in targets.items() for t in ts}
        fixed, params, defaults = set(), set(), {}
        for nid, field_name in inputs:
            value = (nodes.get(nid, {}).get("inputs") or {}).get(field_name)
            name = by_target.get((nid, field_name))
            if name is not None:
                params.add(name)
                if isinstance(value, str):
                    defaults[name] = value
            elif isinstance(value, str):
                fixed.add(value)
        return cls(tuple(sorted(fixed)), tuple(sorted(params)), defaults)

    def key(self, params: Mapping[str, Any]) -> ModelKey:
        """The model files a job with ``params`` loads."""
        if not self.params:
            return self.fixed
        values = set(self.fixed)
        for name in self.params:
            value = params.get(name, self.defaults.get(name))
            if value is not None:
                values.add(str(value))
        return tuple(sorted(values))


def describe(key: ModelKey) -> str:
    """A key as the dry run and the summary print it."""
    return " + ".join(key) if key else "(no model files)"
