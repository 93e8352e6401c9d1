"""The shipped Kubernetes Job is consistent with itself (no cluster here: what can be checked without one)."""

from __future__ import annotations

import yaml

from tests.helpers.manifests import ROOT

JOB = ROOT / "deploy" / "kubernetes" / "shards-job.yaml"


def test_the_runner_reads_the_folder_the_sidecar_saves_into_and_shards_match_completions():
    spec = yaml.safe_load(JOB.read_text())["spec"]
    pod = spec["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    (runner,) = pod["containers"]
    saves_to = sidecar["command"][sidecar["command"].index("--output-directory") + 1]
    env = {e["name"]: e["value"] for e in runner["env"]}
    mounts = {c["name"]: {m["mountPath"]: m["name"] for m in c["volumeMounts"]} for c in (sidecar, runner)}
    volume = mounts["comfyui"][saves_to]
    assert mounts["runner"][env["COMFYUI_OUTPUT_DIR"]] == volume  # the same volume, seen by both
    assert any(v["name"] == volume and "emptyDir" in v for v in pod["volumes"])
    assert runner["command"][runner["command"].index("--shards") + 1] == str(spec["completions"])
