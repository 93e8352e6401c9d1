"""Synthetic output folders (index.json + files) for the report tests, made the way the store makes them."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from pathlib import Path
from typing import Any

import pytest

COLORS = {"red": (220, 30, 30), "blue": (30, 90, 220), "green": (40, 160, 60)}


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (24, 16), text: dict[str, str] | None = None) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def wav_bytes(freq: float = 440.0, frames: int = 800, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(frames)))
    return buf.getvalue()


def write_output(root: Path, records: list[dict[str, Any]], name: str = "demo") -> Path:
    """Write index.json as the store does (one record per line)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(r) for r in records)
    (root / "index.json").write_text(f'{{"manifest": "{name}", "updated": "now", "jobs": [\n{lines}\n]}}\n')
    return root


def add_file(root: Path, rec: dict[str, Any], var: str, kind: str, data: bytes, ext: str, n: int = 0) -> None:
    rel = f"files/{rec['workflow']}/{rec['id']}_{var}{'_' + str(n) if n else ''}{ext}"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    rec.setdefault("files", []).append({"var": var, "kind": kind, "path": rel, "size": len(data), "sha256": f"{rec['id']}{var}{n}",
                                        "source_name": f"x{ext}", "node": "3", "type": "output"})


@pytest.fixture
def demo_output(tmp_path: Path) -> Path:
    """label (red, blue, green) x strength (0.0, 0.5) x seed (1, 2): 12 jobs; (green, 0.5, 2) failed, (blue, 0.5, *) not run."""
    records = []
    for label in COLORS:
        for strength in (0.0, 0.5):
            for seed in (1, 2):
                if label == "blue" and strength == 0.5:
                    continue
                rec: dict[str, Any] = {"id": f"j{len(records):02d}", "workflow": "swatch",
                                       "params": {"label": label, "strength": strength, "seed": seed},
                                       "repeat": 0, "seeds": {"seed": seed}, "backend": "a", "attempts": 1,
                                       "workflow_sha256": "ab" * 32, "texts": {}, "files": []}
                if (label, strength, seed) == ("green", 0.5, 2):
                    rec.update(status="failed", error={"kind": "node_error", "message": "out of memory on node 2"})
                else:
                    rec["status"] = "completed"
                    shade = tuple(min(255, int(c + 100 * strength)) for c in COLORS[label])
                    add_file(tmp_path / "out", rec, "swatch", "image", png_bytes(shade, text={"prompt": "{}"}), ".png")
                    rec["texts"] = {"caption": [f"a swatch of {label}"]}
                records.append(rec)
    return write_output(tmp_path / "out", records)


@pytest.fixture
def audio_output(tmp_path: Path) -> Path:
    records = []
    for i, tone in enumerate(("low", "high")):
        rec: dict[str, Any] = {"id": f"a{i}", "workflow": "tone", "params": {"tone": tone, "seed": i}, "seeds": {"seed": i},
                               "status": "completed", "texts": {"caption": [f"a {tone} beep"]}, "files": []}
        add_file(tmp_path / "aout", rec, "sound", "audio", wav_bytes(220.0 * (i + 1)), ".wav")
        records.append(rec)
    return write_output(tmp_path / "aout", records, name="tones")


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's Chromium, installed from Debian's packages on first use if the machine lacks it."""
    import os
    import shutil
    import subprocess

    found = shutil.which("chromium")
    if found is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        found = shutil.which("chromium")
    return found or "/usr/bin/chromium"  # missing still: the browser fixture fails loudly


@pytest.fixture(scope="package")
def browser():
    """Debian's Chromium driven by Playwright (never Playwright's own download); the tier fails if it cannot start."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        pytest.fail(f"playwright is not installed (pip install playwright): {exc}", pytrace=False)
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.fail(f"Chromium could not start ({chromium_path()}; apt-get install chromium): {exc}", pytrace=False)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """Open a local file in a fresh page; the test fails on any script error in the page."""
    pages = []

    def _open(path: Path, viewport: tuple[int, int] = (1200, 900)):
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        page.goto(path.resolve().as_uri())
        page.wait_for_selector("body[data-rendered]", state="attached")
        pages.append(page)
        return page

    yield _open
    for page in pages:
        assert page.errors == [], f"script errors in the page: {page.errors}"
        page.close()
