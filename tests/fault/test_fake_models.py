"""The fake ComfyUI's model files: /models like the real server, loader combos in /object_info, and a price
for switching model sets (an LRU of ``slots`` resident sets), the ground truth of model-aware scheduling tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.waiting import wait_for

FILES = {"checkpoints": ["a.safetensors", "b.safetensors"], "vae": ["v1.safetensors", "v2.safetensors"],
         "loras": ["l1.safetensors"]}
A = frozenset({("checkpoints", "a.safetensors"), ("vae", "v1.safetensors")})
B = frozenset({("checkpoints", "a.safetensors"), ("vae", "v2.safetensors")})


@pytest.fixture
def make_fake():
    started: list[FakeComfyUI] = []

    def make(**kw) -> FakeComfyUI:
        started.append(FakeComfyUI(**kw).start())
        return started[-1]

    yield make
    for fake in started:
        fake.stop()


def _get(fake: FakeComfyUI, path: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(fake.url + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def _submit(fake: FakeComfyUI, prompt: dict) -> str:
    req = urllib.request.Request(fake.url + "/prompt", json.dumps({"prompt": prompt, "client_id": "t"}).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["prompt_id"]


def _prompt(models: frozenset = frozenset(), prefix: str = "x") -> dict:
    """An image saved by a prompt that also loads ``models`` (a checkpoint and a VAE) when given."""
    p: dict = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
               "9": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}
    files = dict(models)
    if "checkpoints" in files:
        p["2"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": files["checkpoints"]}}
    if "vae" in files:
        p["3"] = {"class_type": "VAELoader", "inputs": {"vae_name": files["vae"]}}
    return p


def _run_all(fake: FakeComfyUI, sets: list[frozenset]) -> list[str]:
    ids = [_submit(fake, _prompt(s, prefix=f"p{i}")) for i, s in enumerate(sets)]
    wait_for(lambda: all(pid in fake.history for pid in ids))
    return ids


def test_models_lists_the_folders_and_each_folders_files(make_fake):
    fake = make_fake(model_files=FILES)
    assert _get(fake, "/models") == (200, ["checkpoints", "vae", "loras"])
    assert _get(fake, "/models/vae") == (200, ["v1.safetensors", "v2.safetensors"])
    assert _get(fake, "/api/models/loras") == (200, ["l1.safetensors"])
    assert _get(fake, "/models/embeddings") == (404, None)


def test_a_server_without_model_files_has_no_models_route_and_no_loaders(make_fake):
    fake = make_fake()
    assert _get(fake, "/models") == (404, None)
    assert _get(fake, "/models/vae") == (404, None)
    status, info = _get(fake, "/object_info")
    assert status == 200 and "VAELoader" not in info and "SaveImage" in info
    with pytest.raises(urllib.error.HTTPError) as err:
        _submit(fake, _prompt(A))
    assert err.value.code == 400


def test_object_info_offers_the_files_as_the_loaders_choices(make_fake):
    fake = make_fake(model_files=FILES)
    _, info = _get(fake, "/object_info")
    assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] == [["a.safetensors", "b.safetensors"]]
    assert info["VAELoader"]["input"]["required"]["vae_name"] == [["v1.safetensors", "v2.safetensors"]]
    lora = info["LoraLoader"]["input"]["required"]
    assert lora["lora_name"] == [["l1.safetensors"]] and lora["strength_model"][0] == lora["strength_clip"][0] == "FLOAT"
    assert "UNETLoader" not in info, "no diffusion_models folder, no loader for it"
    assert {"EmptyImage", "SaveImage", "KSampler", "Slow"} <= set(info), "the plain classes stay"


def test_one_slot_pays_for_every_change_of_model_set(make_fake):
    fake = make_fake(model_files=FILES, slots=1)
    ids = _run_all(fake, [A, B, A])
    assert fake.switches == 3 and fake.loads == [A, B, A]
    assert fake.model_log == [(ids[0], A, True), (ids[1], B, True), (ids[2], A, True)]


def test_two_slots_keep_both_sets_resident(make_fake):
    fake = make_fake(model_files=FILES, slots=2)
    ids = _run_all(fake, [A, B, A, B])
    assert fake.switches == 2 and fake.loads == [A, B]
    assert [switched for _, _, switched in fake.model_log] == [True, True, False, False]
    assert [pid for pid, _, _ in fake.model_log] == ids


def test_two_slots_evict_the_least_recently_used_set(make_fake):
    c = frozenset({("checkpoints", "b.safetensors")})
    fake = make_fake(model_files=FILES, slots=2)
    _run_all(fake, [A, B, A, c, B])  # c evicts B (A was used after B), so B loads again
    assert fake.loads == [A, B, c, B]


def test_a_prompt_without_model_inputs_never_switches_nor_evicts(make_fake):
    fake = make_fake(model_files=FILES, slots=1, switch_cost=0.01)
    ids = _run_all(fake, [A, frozenset(), A])
    assert fake.switches == 1 and fake.loads == [A]
    assert fake.model_log[1] == (ids[1], frozenset(), False)


def test_the_same_set_back_to_back_loads_once(make_fake):
    fake = make_fake(model_files=FILES)
    _run_all(fake, [A, A, A])
    assert fake.switches == 1 and [s for _, _, s in fake.model_log] == [True, False, False]


def test_names_not_among_the_model_files_are_no_models(make_fake):
    fake = make_fake(model_files=FILES)
    pid = _submit(fake, {"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "v1.ckpt"}},
                         "2": {"class_type": "LoadImage", "inputs": {"image": "example.png"}}})
    wait_for(lambda: pid in fake.history)
    assert fake.switches == 0 and fake.model_log == [(pid, frozenset(), False)]


def test_a_lora_counts_as_a_model(make_fake):
    fake = make_fake(model_files=FILES)
    lora = {"class_type": "LoraLoader", "inputs": {"model": ["2", 0], "clip": ["2", 1], "lora_name": "l1.safetensors",
                                                   "strength_model": 1.0, "strength_clip": 1.0}}
    pid = _submit(fake, {**_prompt(A), "4": lora})
    wait_for(lambda: pid in fake.history)
    assert fake.loads == [A | {("loras", "l1.safetensors")}]


def test_the_switch_is_paid_inside_the_prompts_execution_and_can_be_interrupted(make_fake):
    """A load that would take minutes: the prompt is running (not done) until interrupted, then ends as interrupted."""
    fake = make_fake(model_files=FILES, switch_cost=300.0)
    pid = _submit(fake, _prompt(A))
    wait_for(lambda: fake.model_log and fake.queue_state()["queue_running"])
    assert pid not in fake.history and fake.switches == 1
    fake.interrupt(pid)
    wait_for(lambda: pid in fake.history)
    entry = fake.history[pid]
    assert entry["status"]["status_str"] == "error"
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_interrupted"


def test_a_restarted_server_has_no_model_resident(make_fake):
    fake = make_fake(model_files=FILES)
    _run_all(fake, [A])
    fake.restart()
    _run_all(fake, [A])
    assert fake.switches == 2
