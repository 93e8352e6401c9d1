import json
import random

import pytest

from comfykit_batch.errors import ParameterError, WorkflowError
from comfykit_batch.workflow import InputType, Workflow, coerce

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
     ("bool", "true", True), ("bool", "off", False), ("number", "7", 7), ("number", 7.5, 7.5)],
)
def test_lossless_coercion(typ, value, expected):
    out = coerce(value, "height", InputType(typ))
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("typ, value", [("int", 5.5), ("int", "five"), ("int", True), ("str", [1]), ("bool", "maybe")])
def test_lossy_coercion_is_refused(typ, value):
    with pytest.raises(ParameterError, match="parameter 'height' expects"):
        coerce(value, "height", InputType(typ))


# -- markers that name an input the node lacks (issue 8) ------------------------------------
def _with_title(title, node="1"):
    data = json.loads(json.dumps(INVERT))
    data[node]["_meta"] = {"title": title}
    return data


def test_marker_on_a_missing_input_is_refused_at_load_naming_node_class_and_inputs():
    with pytest.raises(WorkflowError) as err:
        Workflow(_with_title("$w.widht"), source="wf.json")
    msg = str(err.value)
    assert "\n" not in msg
    assert "wf.json: node 1 (EmptyImage)" in msg and "'widht'" in msg and "did you mean 'width'" in msg
    assert msg.endswith("its inputs: batch_size, color, height, width")


def test_marker_whose_name_is_its_field_is_checked_too():
    with pytest.raises(WorkflowError, match=r"node 1 \(EmptyImage\): marker '\$depth'"):
        Workflow(_with_title("$depth"))


def test_an_input_fed_by_a_link_counts_as_an_input():
    wf = Workflow(_with_title("$source.image", node="2"))
    assert wf.parameters["source"].targets == [("2", "image")]
    assert not wf.parameters["source"].has_default


def test_load_node_file_field_and_output_markers_are_unaffected():
    data = {"9": {"class_type": "LoadImage", "inputs": {}, "_meta": {"title": "$img.image!"}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}, "_meta": {"title": "$output.saved"}}}
    wf = Workflow(data)
    assert wf.parameters["img"].upload and wf.output_names == {"3": "saved"}


# -- server types, per (workflow, backend) (issue 8) -------------------------------------------
OBJECT_INFO = {
    "KSampler": {"input": {"required": {
        "seed": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}],
        "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
        "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1}],
        "model": ["MODEL"]}}},
    "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors", "b.safetensors"]]}}},
    "CLIPTextEncode": {"input": {"required": {"text": ["STRING", {"multiline": True}], "clip": ["CLIP"]}}},
    "LoadImage": {"input": {"required": {"image": [["a.png", "b.png"], {"image_upload": True}]}}},
}


def _sampler_with(extra_title):
    data = json.loads(json.dumps(SAMPLER))
    data["3"]["_meta"]["title"] += extra_title
    return data


def test_input_types_reads_every_object_info_format():
    info = json.loads(json.dumps(OBJECT_INFO))
    info["KSampler"]["input"]["optional"] = {"denoise": ["BOOLEAN", {"default": True}]}
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = ["COMBO", {"options": ["x.ckpt", "y.ckpt"]}]
    data = _sampler_with(", $cfg, $denoise")
    data["3"]["inputs"]["denoise"] = True
    types = Workflow(data).input_types(info)
    assert types["steps"] == InputType("int", min=1, max=10000, origin="server")
    assert types["cfg"].type == "float" and types["cfg"].max == 100.0 and types["cfg"].step == 0.1
    assert types["prompt"].type == "str" and types["prompt"].multiline
    assert types["denoise"].type == "bool"
    assert types["model"] == InputType("choice", ("x.ckpt", "y.ckpt"), origin="server")
    assert types["img"].type == "upload", "an upload stays an upload, whatever the server's combo lists"
    old = Workflow(SAMPLER).input_types(OBJECT_INFO)["model"]
    assert old.type == "choice" and old.choices == ("a.safetensors", "b.safetensors")


def test_input_types_never_changes_the_shared_workflow():
    wf = Workflow(SAMPLER)
    before = {n: (p.type, p.default) for n, p in wf.parameters.items()}
    wf.input_types(OBJECT_INFO)
    assert {n: (p.type, p.default) for n, p in wf.parameters.items()} == before
    assert not hasattr(wf, "refine_types")


def test_two_servers_with_different_model_lists_each_accept_their_own():
    wf = Workflow(SAMPLER)
    info_b = json.loads(json.dumps(OBJECT_INFO))
    info_b["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [["c.safetensors"]]
    types_a, types_b = wf.input_types(OBJECT_INFO), wf.input_types(info_b)
    assert wf.bind({"prompt": "p", "model": "a.safetensors"}, types=types_a).prompt["4"]["inputs"]["ckpt_name"] == "a.safetensors"
    assert wf.bind({"prompt": "p", "model": "c.safetensors"}, types=types_b).prompt["4"]["inputs"]["ckpt_name"] == "c.safetensors"
    # learning the second server's types did not narrow what the first accepts
    assert wf.check_value("model", "a.safetensors", types_a) == "a.safetensors"
    with pytest.raises(ParameterError, match="not one of the server's choices"):
        wf.check_value("model", "a.safetensors", types_b)


def test_lossy_value_for_a_server_int_is_refused_where_the_literal_would_accept_it():
    wf = Workflow(SAMPLER)
    assert wf.check_value("steps", 3.5) == 3.5, "without server types a literal number keeps its value"
    with pytest.raises(ParameterError, match=r"parameter 'steps' expects int \(a whole number\), got float 3.5"):
        wf.bind({"prompt": "p", "steps": 3.5}, types=wf.input_types(OBJECT_INFO))
    assert wf.check_value("steps", "12", wf.input_types(OBJECT_INFO)) == 12


@pytest.mark.parametrize("value", [0, 10001, "10001"])
def test_numbers_outside_the_servers_range_are_refused(value):
    wf = Workflow(SAMPLER)
    with pytest.raises(ParameterError, match=f"parameter 'steps' must be between 1 and 10000 .*server's limits.*got {value}"):
        wf.check_value("steps", value, wf.input_types(OBJECT_INFO))
    with pytest.raises(ParameterError, match="must be at most 100.0"):
        coerce(100.5, "cfg", InputType("float", max=100.0))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**70, float(2**70)])
def test_integers_beyond_64_bits_are_refused_even_without_server_types(value):
    wf = Workflow(SAMPLER)
    if isinstance(value, int):
        with pytest.raises(ParameterError, match="signed 64-bit integer"):
            wf.bind({"prompt": "p", "steps": value})
    with pytest.raises(ParameterError, match="signed 64-bit integer"):
        wf.check_value("seed", int(value), wf.input_types(OBJECT_INFO))  # the server's seed max is 2**64-1
    assert wf.check_value("seed", 2**63 - 1) == 2**63 - 1


def test_non_finite_numbers_are_refused():
    with pytest.raises(ParameterError, match="finite"):
        Workflow(SAMPLER).check_value("steps", float("nan"))


def test_unknown_choice_lists_valid_ones_and_suggests_a_close_match():
    wf = Workflow(SAMPLER)
    with pytest.raises(ParameterError) as err:
        wf.check_value("model", "b.safetensor", wf.input_types(OBJECT_INFO))
    msg = str(err.value)
    assert "did you mean 'b.safetensors'" in msg and "valid: 'a.safetensors', 'b.safetensors'" in msg


def test_a_long_choice_list_is_shortened():
    choices = tuple(f"model_{i:03}.safetensors" for i in range(200))
    with pytest.raises(ParameterError, match=r"\.\.\. \(200 in all\)") as err:
        coerce("zzz", "model", InputType("choice", choices, origin="server"))
    assert len(str(err.value)) < 600


@pytest.mark.parametrize("value", [True, False])
def test_yaml_boolean_for_a_string_or_choice_says_quote_it(value):
    wf = Workflow(SAMPLER)
    for name, types in (("prompt", None), ("model", wf.input_types(OBJECT_INFO))):
        with pytest.raises(ParameterError, match=r"quote it \('yes', 'no', 'on', 'off' are booleans in YAML\)"):
            wf.check_value(name, value, types)


def test_check_value_returns_what_would_be_submitted():
    wf = Workflow(SAMPLER)
    types = wf.input_types(OBJECT_INFO)
    assert wf.check_value("steps", 7.0, types) == 7 and type(wf.check_value("steps", 7.0, types)) is int
    assert wf.check_value("seed", "random") == "random"
    assert wf.check_value("img", "on_server.png") == "on_server.png"
    with pytest.raises(ParameterError, match="unknown parameter 'stpes'"):
        wf.check_value("stpes", 1)
    with pytest.raises(ParameterError, match="no such file"):
        wf.check_value("img", "./missing/picture.png")


def test_a_signed_url_in_a_refused_value_does_not_reach_the_message():
    with pytest.raises(ParameterError) as err:
        coerce("https://cdn.example/m.safetensors?sig=SECRET", "model", InputType("choice", ("a",), origin="server"))
    assert "SECRET" not in str(err.value) and "cdn.example/m.safetensors" in str(err.value)


def test_list_params_shows_a_servers_types_without_storing_them():
    wf = Workflow(SAMPLER)
    rows = {r["name"]: r for r in wf.list_params(wf.input_types(OBJECT_INFO))}
    assert rows["model"]["type"] == "choice" and rows["model"]["choices"] == ["a.safetensors", "b.safetensors"]
    assert rows["steps"]["min"] == 1
    assert {r["name"]: r["type"] for r in wf.list_params()}["model"] == "str"


def test_a_signed_upload_url_stays_out_of_values_and_reprs():
    wf = Workflow(SAMPLER)
    b = wf.bind({"prompt": "p", "img": "https://cdn.example/in/cat.png?sig=SECRET"})
    assert "SECRET" not in json.dumps(b.values) and "SECRET" not in repr(b.uploads)
    assert b.uploads[0].source.describe() == "https://cdn.example/in/cat.png?…"
    assert b.with_uploads({"img": "cat-abc.png"})["9"]["inputs"]["image"] == "cat-abc.png"
    assert b.values["img"] == "cat-abc.png"


def test_one_name_on_two_nodes_accepts_what_both_accept():
    data = {"1": {"class_type": "A", "inputs": {"n": 4, "m": "x"}, "_meta": {"title": "$n, $pick.m"}},
            "2": {"class_type": "B", "inputs": {"n": 4, "m": "x"}, "_meta": {"title": "$n, $pick.m"}}}
    info = {"A": {"input": {"required": {"n": ["INT", {"min": 0, "max": 100}], "m": [["x", "y", "z"]]}}},
            "B": {"input": {"optional": {"n": ["INT", {"min": 2, "max": 50}], "m": [["y", "z", "w"]]}}}}
    types = Workflow(data).input_types(info)
    assert (types["n"].min, types["n"].max) == (2, 50) and types["pick"].choices == ("y", "z")


@pytest.mark.parametrize("spec", [None, [], "INT", [{"x": 1}], [None], [3], ["IMAGE"], ["COMBO", {}], ["*"]])
def test_odd_specs_from_a_server_never_raise(spec):
    wf = Workflow(INVERT)
    types = wf.input_types({"EmptyImage": {"input": {"required": {"width": spec}, "optional": [1]}}, "ImageInvert": "junk"})
    assert wf.input_types({"EmptyImage": {"input": ["junk"]}})["width"].type == "number"
    assert types["width"].type in ("any", "number")
    assert wf.check_value("width", 12, types) == 12


def test_fingerprint_is_computed_once_and_follows_replaced_nodes(monkeypatch):
    import hashlib as hashlib_module

    from comfykit_batch.sources import remote_workflow

    wf = remote_workflow("123")
    before = wf.fingerprint()
    calls = []
    real = hashlib_module.sha256
    monkeypatch.setattr("comfykit_batch.workflow.hashlib.sha256", lambda data: calls.append(1) or real(data))
    assert wf.fingerprint() == before and not calls, "asked again: the memo answers"
    wf.load_nodes({"1": {"class_type": "X", "inputs": {"v": 1}, "_meta": {"title": "$v"}}}, fetched=True)
    after = wf.fingerprint()
    assert after != before and len(calls) == 1, "fetched nodes replace the old ones: hashed anew"
    assert wf.fingerprint() == after and len(calls) == 1
