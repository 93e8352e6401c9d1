"""Write small manifests for tests."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_manifest(tmp_path: Path, backends: list[dict], *, workflow: str | Path, sweep: dict, name: str = "t",
                   defaults: dict | None = None, workflows: list[dict] | None = None) -> Path:
    data = {
        "name": name,
        "output": str(tmp_path / "out"),
        "defaults": {"timeout": 30, "retries": 2, **(defaults or {})},
        "backends": backends,
        "workflows": workflows or [{"name": "w", "source": str(workflow)}],
        "sweep": sweep,
    }
    p = tmp_path / "manifest.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p
