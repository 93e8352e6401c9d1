"""The shipped example on a real ComfyUI, then every README command of "Looking at and using the results",
and the gallery in a real Chromium: grid labels, cells, a filter, a screenshot."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from PIL import Image

from comfykit_batch.cli import main
from comfykit_batch.report.gallery import write_gallery
from tests.helpers.manifests import ROOT

pytestmark = pytest.mark.real

SECTION = "## Looking at and using the results"


def readme_commands() -> list[str]:
    """The `comfykit-batch` lines of the README's results section, exactly as written there."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[: section.index("\n## ", len(SECTION))]
    return [line.strip() for line in section.splitlines() if line.strip().startswith("comfykit-batch ")]


@pytest.fixture(scope="module")
def example(real_comfy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped example sweep run on the real server into ``<tmp>/output/example-sweep``; returns ``<tmp>``."""
    base = tmp_path_factory.mktemp("example")
    text = (ROOT / "manifests" / "sweep.yaml").read_text()
    shutil.copytree(ROOT / "manifests" / "workflows", base / "workflows")
    start, end = text.index("backends:\n"), text.index("workflows:\n")
    text = text[:start] + f"backends:\n  - name: a\n    url: {real_comfy.url}\n\n" + text[end:]
    (base / "sweep.yaml").write_text(text)
    out = base / "output" / "example-sweep"
    assert main([str(base / "sweep.yaml"), "-q", "--output", str(out)]) == 0
    assert (out / "index.json").is_file()
    return base


def test_downloaded_png_keeps_comfyui_text_chunks(example):
    pngs = sorted((example / "output" / "example-sweep" / "files").rglob("*.png"))
    assert len(pngs) == 28
    with Image.open(pngs[0]) as im:
        # ComfyUI writes "prompt" (the API graph that ran); "workflow" only when a client sends a UI graph
        assert '"ImageAddNoise"' in im.text["prompt"] and '"strength"' in im.text["prompt"]


def test_readme_commands_run(example, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(example)
    commands = readme_commands()
    assert len(commands) >= 6 and any(" export " in c for c in commands)
    for line in commands:
        argv = shlex.split(line)[1:]
        assert main(argv) == 0, f"{line}\n{capsys.readouterr().err}"
    capsys.readouterr()
    assert (example / "output" / "example-sweep" / "gallery.html").is_file()
    grid = Image.open(example / "grid.png")
    assert grid.width > 3 * 128 and grid.height > 2 * 128
    assert sorted(p.name for p in (example / "grids").iterdir()) == ["seeds_width-32.png", "seeds_width-48.png"]
    meta = (example / "datasets" / "swatches" / "metadata.jsonl").read_text().splitlines()
    assert len(meta) == 28
    captions = sorted((example / "datasets" / "kohya").rglob("*.txt"))
    assert len(captions) == 28 and re.fullmatch(r"a (red|blue) swatch, seed 100[0-2]", captions[0].read_text())
    assert (example / "datasets" / "kohya-captions" / "provenance.json").is_file()
    assert len((example / "datasets" / "table" / "example-sweep.csv").read_text().splitlines()) == 29


def test_gallery_of_the_real_sweep_in_chromium(example, open_page, tmp_path):
    out = example / "output" / "example-sweep"
    page = open_page(write_gallery(out))
    # the default axes: strength across, label (not its zipped twin, color) down
    assert page.locator("#axis-x").input_value() == "strength" and page.locator("#axis-y").input_value() == "label"
    page.select_option("#axis-x", "width")
    assert page.locator("th.col-label").all_inner_texts() == ["width = 32", "width = 48"]
    page.select_option("#axis-x", "strength")
    assert page.locator("th.col-label").all_inner_texts() == ["strength = 0.0", "strength = 0.2", "strength = 0.5"]
    assert page.locator("th.row-label").all_inner_texts() == ["label = red", "label = blue"]
    assert page.locator("td.cell").count() == 6 and page.locator(".item").count() == 28
    # strength 0.0 ran one seed per colour and width; 0.2 and 0.5 ran three
    assert page.locator('td.cell[data-x="0.0"][data-y="red"] .item').count() == 2
    assert page.locator('td.cell[data-x="0.5"][data-y="blue"] .item').count() == 6
    page.wait_for_function("[...document.querySelectorAll('td.cell img')].slice(0, 6).every((i) => i.naturalWidth > 0)")
    first = page.locator('td.cell[data-x="0.2"][data-y="red"] .item').first
    assert "label = red" in first.get_attribute("title") and "seed = 1000" in first.get_attribute("title")
    assert (out / first.locator("a").get_attribute("href")).is_file()
    assert first.locator("pre.caption").inner_text() == "a swatch of red"
    # filters: width 48 and seed 1001 leave one job per (strength 0.2/0.5, colour); strength 0.0 had no seed 1001
    page.select_option('select.filter[data-param="width"]', label="48")
    page.select_option('select.filter[data-param="seed"]', label="1001")
    assert page.locator("th.col-label").all_inner_texts() == ["strength = 0.2", "strength = 0.5"]
    assert page.locator(".item").count() == 4
    assert page.locator("#summary").inner_text() == "4 of 28 jobs shown, 0 failed"
    titles = [page.locator(".item").nth(i).get_attribute("title") for i in range(4)]
    assert all("width = 48" in t and "seed = 1001" in t for t in titles)
    page.select_option('select.filter[data-param="seed"]', label="(all)")
    page.wait_for_function("[...document.querySelectorAll('td.cell img')].slice(0, 12).every((i) => i.complete && i.naturalWidth > 0)")
    shot = tmp_path / "gallery.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] >= 1200
