"""Real model files for the real-ComfyUI tier, and reading model loads back from a server's history.

Model-aware scheduling only shows on a server that really loads models, but the tier
downloads no weights: it generates Stable Diffusion-shaped VAEs with random weights
(the real architecture, so loading them costs what loading a real VAE costs). The
project venv has no torch, so the files are written by the managed ComfyUI's own
interpreter, with ComfyUI's own model class (the state dict is then exactly what its
``VAELoader`` expects).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

from comfykit_batch.local_comfyui import install

VAE_NAME = "ckb-test-vae-{}.safetensors"

# Run by the managed ComfyUI's python, cwd = its tree; argv: target folder, name pattern, then the file indexes to write.
_GENERATE = r'''
import os, sys
from comfy.cli_args import args
args.cpu = True  # before any other comfy import: model_management picks its device at import time
import torch
from safetensors.torch import save_file
from comfy.ldm.models.autoencoder import AutoencoderKL

DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
            "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
folder, pattern = sys.argv[1:3]
for index in map(int, sys.argv[3:]):
    torch.manual_seed(index)
    model = AutoencoderKL(embed_dim=4, ddconfig=DDCONFIG)
    sd = {}
    for name, p in model.state_dict().items():  # comfy's ops skip init: every tensor is set here
        if p.ndim > 1:
            fan_in = p[0].numel()
            t = torch.randn(p.shape) / fan_in ** 0.5
        elif name.endswith("weight"):  # norm scales
            t = 1 + 0.1 * torch.randn(p.shape)
        else:
            t = 0.02 * torch.randn(p.shape)
        sd[name] = t.to(torch.float16).contiguous()
    final = os.path.join(folder, pattern.format(index))
    tmp = f"{final}.{os.getpid()}.tmp"
    save_file(sd, tmp, metadata={"comfykit_batch": f"random-weight SD VAE for tests, seed {index}"})
    os.chmod(tmp, 0o644)  # safetensors writes owner-only
    os.replace(tmp, final)
    print(final, sum(t.numel() for t in sd.values()), flush=True)
'''


def _complete(path: Path) -> bool:
    """A safetensors file is whole when its size is the header's length plus the last tensor's end offset."""
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error):
        return False
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return bool(ends) and path.stat().st_size == 8 + n + max(ends)


def _generate(folder: Path, indexes: list[int], home: Path | None) -> None:
    """Write the missing files with the managed ComfyUI's interpreter (it has torch; this venv does not)."""
    inst = install(home)
    env = {**os.environ, "PYTHONPATH": str(inst.stub)}
    env.pop("PYTHONHOME", None)
    subprocess.run([str(inst.python), "-c", _GENERATE, str(folder), VAE_NAME, *map(str, indexes)], cwd=str(inst.comfy), env=env,
                   check=True, stdout=subprocess.DEVNULL)


def _place(src: Path, dest: Path) -> None:
    """Hard-link a cached file into a server's folder (no second 167 MB on disk); copy across file systems."""
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def ensure_vae_files(models_dir: Path, n: int = 3, *, home: Path | None = None) -> list[str]:
    """Make ``n`` distinct random SD VAEs available in ``models_dir/vae``; returns their ``vae_name`` values.

    ``models_dir`` is a server's ``<base>/models``. Generating costs seconds per file, so the files are
    made once in the managed install's cache (``home``, default: the managed server's) and linked from there.
    """
    cache = install(home).home / "test-models" / "vae"
    cache.mkdir(parents=True, exist_ok=True)
    names = [VAE_NAME.format(i) for i in range(n)]
    missing = [i for i, name in enumerate(names) if not _complete(cache / name)]
    if missing:
        _generate(cache, missing, home)
    target = Path(models_dir) / "vae"
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not _complete(target / name):
            _place(cache / name, target / name)
    return names


def count_loads(history_entry: dict, loader_node_ids: set[str]) -> int:
    """How many of these loader nodes really ran (loaded their file) in one ``/history/{id}`` entry.

    ComfyUI lists the nodes it reused from the previous prompt in one ``execution_cached`` message;
    a loader of the prompt not listed there executed, i.e. read its model from disk. Meant for successful
    prompts: after an ``execution_error`` the nodes that never ran are not listed as cached either.
    """
    cached: set[str] = set()
    for message in (history_entry.get("status") or {}).get("messages") or []:
        if isinstance(message, list) and len(message) == 2 and message[0] == "execution_cached":
            cached.update(str(n) for n in (message[1] or {}).get("nodes") or [])
    prompt = history_entry.get("prompt")  # [number, prompt_id, prompt, extra_data, outputs]
    in_prompt = set(prompt[2]) if isinstance(prompt, list) and len(prompt) > 2 and isinstance(prompt[2], dict) else set(loader_node_ids)
    return len((set(loader_node_ids) & in_prompt) - cached)
