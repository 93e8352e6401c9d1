"""Model keys (``models.py``): which inputs of a workflow name model files, and the files a job loads.

Workflows are built with ``Workflow`` and ``$param`` markers, as users write them, so a change to the
DSL that moves a parameter's targets shows up here as well.
"""

from __future__ import annotations

from typing import Any

from comfykit_batch.models import CORE_LOADERS, ModelKeyer, describe, learned_inputs, static_inputs
from comfykit_batch.workflow import Workflow

TXT2IMG: dict[str, Any] = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"},
          "_meta": {"title": "$ckpt.ckpt_name"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}, "_meta": {"title": "$prompt.text"}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail.safetensors", "strength_model": 1.0,
                                                  "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]}},
    "11": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}, "_meta": {"title": "$vae.vae_name"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "sampler_name": "euler", "model": ["10", 0],
                                               "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0]},
          "_meta": {"title": "$seed, $sampler.sampler_name"}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "out"}, "_meta": {"title": "$output.image"}},
}

VAE_FILES = ["ae.safetensors", "sdxl_vae.safetensors", "taesd_decoder.pth"]
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m"]


def targets(wf: Workflow) -> dict[str, list[tuple[str, str]]]:
    return {name: p.targets for name, p in wf.parameters.items()}


def keyer(nodes: dict[str, Any], extra: frozenset[tuple[str, str]] = frozenset()) -> ModelKeyer:
    wf = Workflow(nodes)
    return ModelKeyer.of(wf.nodes, targets(wf), static_inputs(wf.nodes) | extra)


# -- static detection ----------------------------------------------------------------------------------


def test_core_loaders_inputs_count_whatever_their_value() -> None:
    """``pixel_space`` is no file name, but VAELoader's input names a model all the same."""
    assert static_inputs(Workflow(TXT2IMG).nodes) == {("4", "ckpt_name"), ("10", "lora_name"), ("11", "vae_name")}


def test_every_core_loader_input_is_found() -> None:
    nodes = {str(i): {"class_type": cls, "inputs": dict.fromkeys(fields, "x")} for i, (cls, fields) in enumerate(CORE_LOADERS.items())}
    expected = {(str(i), f) for i, fields in enumerate(CORE_LOADERS.values()) for f in fields}
    assert static_inputs(nodes) == expected


def test_a_core_loader_input_counts_even_when_it_is_a_link() -> None:
    """A primitive may feed the file name: the input still names a model (its value is whatever the link gives)."""
    nodes = {"1": {"class_type": "UNETLoader", "inputs": {"unet_name": ["2", 0], "weight_dtype": "default"}}}
    assert static_inputs(nodes) == {("1", "unet_name")}


def test_any_value_with_a_model_extension_counts_on_any_node() -> None:
    nodes = {
        "1": {"class_type": "MyCustomLoader", "inputs": {"weights": "Flux/dev-Q4.GGUF", "mode": "fast"}},
        "2": {"class_type": "Upscaler", "inputs": {"file": "x4.pth", "scale": 4}},
        "3": {"class_type": "Notes", "inputs": {"text": "a cat", "path": "image.png"}},
    }
    assert static_inputs(nodes) == {("1", "weights"), ("2", "file")}


def test_links_and_non_strings_are_ignored() -> None:
    """A link is a [node, slot] list: it names no file even when its node id looks like one."""
    nodes = {"1": {"class_type": "Custom", "inputs": {"model": ["a.safetensors", 0], "n": 3, "f": None}},
             "2": {"class_type": "Other"}}
    assert static_inputs(nodes) == frozenset()


# -- learned detection -----------------------------------------------------------------------------------


def vae_info(spelling: str) -> dict[str, Any]:
    choices = [*VAE_FILES, "pixel_space", "taesd", "taesdxl"]
    combo: list[Any] = [choices] if spelling == "old" else ["COMBO", {"options": choices}]
    return {"MyVAELoader": {"input": {"required": {"vae": combo}, "optional": {"tiles": ["INT", {"default": 1}]}}},
            "MySampler": {"input": {"required": {"sampler": [SAMPLERS]},
                                    "optional": {"scheduler": ["COMBO", {"options": ["normal", "karras"]}]}}}}


def custom_nodes() -> dict[str, Any]:
    return {"1": {"class_type": "MyVAELoader", "inputs": {"vae": "pixel_space", "tiles": 1}},
            "2": {"class_type": "MySampler", "inputs": {"sampler": "euler", "scheduler": "normal"}}}


def test_a_combo_of_a_folders_files_counts_despite_extras_in_both_spellings() -> None:
    """Three files among six choices: most of the combo is the folder's; the sampler's names are no folder's."""
    folders = {"vae": VAE_FILES, "checkpoints": ["sd15.safetensors"], "samplers_elsewhere": []}
    for spelling in ("old", "new"):
        assert learned_inputs(custom_nodes(), vae_info(spelling), folders) == {("1", "vae")}, spelling


def test_a_combo_mostly_not_a_folders_files_does_not_count() -> None:
    info = {"Pick": {"input": {"required": {"which": [["a.safetensors", "x", "y", "z"]]}}}}
    nodes = {"1": {"class_type": "Pick", "inputs": {"which": "x"}}}
    assert learned_inputs(nodes, info, {"checkpoints": ["a.safetensors"]}) == frozenset()


def test_nothing_is_learned_without_folders_or_a_description() -> None:
    assert learned_inputs(custom_nodes(), vae_info("new"), {}) == frozenset()
    assert learned_inputs(custom_nodes(), {}, {"vae": VAE_FILES}) == frozenset()
    odd = {"MyVAELoader": {"input": "?"}, "MySampler": {"input": {"required": {"sampler": "STRING"}}}}
    assert learned_inputs(custom_nodes(), odd, {"vae": VAE_FILES}) == frozenset()


def test_an_empty_folder_matches_nothing() -> None:
    """A server may list a folder it has no file in: no combo is "mostly" its files, an empty combo neither."""
    info = {"Pick": {"input": {"required": {"which": [["x"]], "none": [[]]}}}}
    nodes = {"1": {"class_type": "Pick", "inputs": {"which": "x", "none": ""}}}
    assert learned_inputs(nodes, info, {"vae": []}) == frozenset()


# -- keys --------------------------------------------------------------------------------------------------


def test_fixed_inputs_give_every_job_the_same_sorted_key() -> None:
    nodes = {k: v for k, v in TXT2IMG.items() if k != "11"}
    nodes["4"] = {**nodes["4"], "_meta": {"title": "Checkpoint"}}
    k = keyer(nodes)
    assert k.params == () and k.fixed == ("detail.safetensors", "sd15.safetensors")
    assert k.key({}) == k.key({"prompt": "a dog", "seed": 5}) == ("detail.safetensors", "sd15.safetensors")


def test_a_swept_input_changes_the_key_and_other_parameters_do_not() -> None:
    k = keyer(TXT2IMG)
    assert k.params == ("ckpt", "vae") and k.fixed == ("detail.safetensors",)
    a = k.key({"ckpt": "sdxl.safetensors", "vae": "ae.safetensors", "seed": 1})
    assert a == ("ae.safetensors", "detail.safetensors", "sdxl.safetensors")
    assert k.key({"ckpt": "sdxl.safetensors", "vae": "ae.safetensors", "seed": 2, "sampler": "dpmpp_2m"}) == a
    assert k.key({"ckpt": "sd15.safetensors", "vae": "ae.safetensors"}) != a


def test_a_parameter_a_job_leaves_out_defaults_to_the_workflows_value() -> None:
    k = keyer(TXT2IMG)
    assert k.defaults == {"ckpt": "sd15.safetensors", "vae": "pixel_space"}
    assert k.key({"vae": "ae.safetensors"}) == ("ae.safetensors", "detail.safetensors", "sd15.safetensors")
    assert k.key({}) == ("detail.safetensors", "pixel_space", "sd15.safetensors")


def test_two_inputs_naming_the_same_file_count_once() -> None:
    nodes = {**TXT2IMG, "12": {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": "detail.safetensors",
                                                                                "model": ["10", 0]}}}
    assert keyer(nodes).key({}).count("detail.safetensors") == 1


def test_a_learned_input_set_by_a_parameter_is_part_of_the_key() -> None:
    nodes = custom_nodes()
    nodes["1"]["_meta"] = {"title": "$vae.vae"}
    learned = learned_inputs(nodes, vae_info("new"), {"vae": VAE_FILES})
    k = keyer(nodes, learned)
    assert k.params == ("vae",) and k.key({"vae": "ae.safetensors"}) == ("ae.safetensors",)
    assert k.key({}) == ("pixel_space",)


def test_a_workflow_loading_no_model_has_the_empty_key() -> None:
    nodes = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
                   "_meta": {"title": "$width"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    k = keyer(nodes)
    assert k.key({}) == () and k.key({"width": 16}) == ()
    assert describe(k.key({})) == "(no model files)"
    assert describe(("a.safetensors", "b.safetensors")) == "a.safetensors + b.safetensors"
