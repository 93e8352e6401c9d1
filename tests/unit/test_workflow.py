import json
import random

import pytest

from comfykit_batch.errors import ParameterError, WorkflowError
from comfykit_batch.workflow import Workflow, coerce

INVERT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680},
          "_meta": {"title": "Size, $width!, $height"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "probe/inv"},
          "_meta": {"title": "$output.inverted"}},
}

SAMPLER = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 0, "steps": 20, "cfg": 8, "model": ["4", 0]},
          "_meta": {"title": "Sampler, $seed, $steps"}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"},
          "_meta": {"title": "$model.ckpt_name"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "x"}, "_meta": {"title": "$prompt.text!"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "y"}, "_meta": {"title": "$prompt.text"}},
    "9": {"class_type": "LoadImage", "inputs": {"image": "a.png"}, "_meta": {"title": "$img.image"}},
}


def test_parameters_defaults_and_outputs():
    wf = Workflow(INVERT)
    assert set(wf.parameters) == {"width", "height"}
    assert wf.parameters["width"].required and not wf.parameters["height"].required
    assert wf.parameters["height"].default == 48
    assert wf.output_names == {"3": "inverted"}


def test_bind_sets_every_node_of_a_name_and_keeps_defaults():
    wf = Workflow(SAMPLER)
    b = wf.bind({"prompt": "a cat", "steps": 5})
    assert b.prompt["6"]["inputs"]["text"] == "a cat" and b.prompt["7"]["inputs"]["text"] == "a cat"
    assert b.prompt["3"]["inputs"]["steps"] == 5
    assert b.prompt["4"]["inputs"]["ckpt_name"] == "a.safetensors"
    assert wf.nodes["6"]["inputs"]["text"] == "x", "binding must not change the workflow"


def test_unknown_parameter_lists_known_ones():
    with pytest.raises(ParameterError, match=r"unknown parameter 'widht' .*known: height, width"):
        Workflow(INVERT).bind({"width": 1, "widht": 2})


def test_missing_required_names_the_node():
    with pytest.raises(ParameterError, match=r"missing required parameter .*: width \(node 1\.width\)"):
        Workflow(INVERT).bind({})


def test_explicit_zero_seed_is_respected_and_recorded():
    b = Workflow(SAMPLER).bind({"prompt": "p", "seed": 0})
    assert b.prompt["3"]["inputs"]["seed"] == 0
    assert b.seeds == {"seed": 0}


def test_literal_zero_seed_is_not_randomised():
    b = Workflow(SAMPLER).bind({"prompt": "p"})
    assert b.prompt["3"]["inputs"]["seed"] == 0


def test_random_seed_is_opt_in_and_recorded():
    b = Workflow(SAMPLER).bind({"prompt": "p", "seed": "random"}, rng=random.Random(1))
    s = b.prompt["3"]["inputs"]["seed"]
    assert isinstance(s, int) and s == b.seeds["seed"] == random.Random(1).randint(0, 2**53 - 1)


def test_load_node_field_is_an_upload_without_tilde():
    wf = Workflow(SAMPLER)
    assert wf.parameters["img"].upload
    b = wf.bind({"prompt": "p", "img": b"\x89PNG\r\n\x1a\nxxxx"})
    assert b.uploads[0].source.kind == "bytes" and b.uploads[0].source.filename.endswith(".png")
    assert b.with_uploads({"img": "img-abc.png"})["9"]["inputs"]["image"] == "img-abc.png"


def test_ui_format_is_refused_with_advice():
    with pytest.raises(WorkflowError, match="UI-format .*Export \\(API\\)"):
        Workflow({"nodes": [], "links": [], "last_node_id": 3})


def test_not_a_node_is_refused(tmp_path):
    with pytest.raises(WorkflowError, match="node '1' is not an API-format node"):
        Workflow({"1": {"inputs": {}}})
    p = tmp_path / "bad.json"
    p.write_text("{nope")
    with pytest.raises(WorkflowError, match="bad.json: not valid JSON"):
        Workflow.from_file(p)
    with pytest.raises(WorkflowError, match="no such workflow file"):
        Workflow.from_file(tmp_path / "missing.json")


def test_fingerprint_changes_with_content():
    a = Workflow(INVERT).fingerprint()
    changed = json.loads(json.dumps(INVERT))
    changed["1"]["inputs"]["color"] = 1
    assert a == Workflow(INVERT).fingerprint() != Workflow(changed).fingerprint()


@pytest.mark.parametrize(
    "typ, value, expected",
    [("int", "5", 5), ("int", 5.0, 5), ("float", 3, 3.0), ("float", "2.5", 2.5), ("str", 7, "7"),
     ("bool", "true", True), ("number", "7", 7), ("number", 7.5, 7.5)],
)
def test_lossless_coercion(typ, value, expected):
    wf = Workflow(INVERT)
    p = wf.parameters["height"]
    p.type = typ
    out = coerce(value, p)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("typ, value", [("int", 5.5), ("int", "five"), ("int", True), ("str", [1]), ("bool", "maybe")])
def test_lossy_coercion_is_refused(typ, value):
    p = Workflow(INVERT).parameters["height"]
    p.type = typ
    with pytest.raises(ParameterError, match="parameter 'height' expects"):
        coerce(value, p)


def test_object_info_refines_types_and_choices():
    wf = Workflow(SAMPLER)
    info = {"KSampler": {"input": {"required": {"cfg": ["FLOAT", {}], "steps": ["INT", {}], "seed": ["INT", {}]}}},
            "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors", "b.safetensors"]]}}}}
    wf.refine_types(info)
    assert wf.parameters["steps"].type == "int"
    with pytest.raises(ParameterError, match="'c.safetensors' is not one of the server's choices"):
        wf.bind({"prompt": "p", "model": "c.safetensors"})
    with pytest.raises(ParameterError, match="expects int"):
        wf.bind({"prompt": "p", "steps": 2.5})
