"""The gallery page in a real Chromium on a synthetic output folder: layout, failures, filters, media, links."""

from __future__ import annotations

import json
import re

from comfykit_batch.cli import main
from comfykit_batch.report.gallery import default_axes, page_data, write_gallery
from comfykit_batch.report.index import load_results

from .conftest import add_file, write_output


def test_page_is_self_contained(demo_output):
    page = write_gallery(demo_output).read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no CDN, nothing fetched from the network"
    assert "<script src" not in page and "<link" not in page
    assert (demo_output / "thumbs").is_dir() and len(list((demo_output / "thumbs").glob("*.jpg"))) == 9


def test_layout_failures_and_filters_in_chromium(demo_output, open_page, tmp_path):
    page = open_page(write_gallery(demo_output))
    assert page.locator("th.col-label").all_inner_texts() == ["label = red", "label = blue", "label = green"]
    assert page.locator("th.row-label").all_inner_texts() == ["strength = 0.0", "strength = 0.5"]
    assert page.locator("td.cell").count() == 6
    blue_half = page.locator('td.cell[data-x="blue"][data-y="0.5"]')
    assert blue_half.inner_text() == "no job"
    failed = page.locator(".item.failed")
    assert failed.count() == 1 and "out of memory on node 2" in failed.inner_text()
    assert page.locator('td.cell[data-x="green"][data-y="0.5"] .item.failed').count() == 1
    first = page.locator('td.cell[data-x="red"][data-y="0.0"] .item').first
    assert "seed = 1" in first.get_attribute("title") and "label = red" in first.get_attribute("title")
    link = first.locator("a").get_attribute("href")
    assert link.startswith("files/swatch/") and (demo_output / link).is_file()
    assert first.locator("img").get_attribute("loading") == "lazy"
    assert first.locator("pre.caption").inner_text() == "a swatch of red", "the text output is shown with its image"
    page.wait_for_function("document.querySelector('td.cell img').naturalWidth > 0")
    # a filter: seed 2 only
    page.select_option('select.filter[data-param="seed"]', label="2")
    assert page.locator(".item").count() == 5
    assert page.locator("#summary").inner_text() == "5 of 10 jobs shown, 1 failed"
    # axes chosen in the page
    page.select_option("#axis-x", "seed")
    page.select_option("#axis-y", "label")
    assert page.locator("th.col-label").all_inner_texts() == ["seed = 2"]
    assert page.locator("th.row-label").all_inner_texts() == ["label = red", "label = blue", "label = green"]
    page.select_option("#var", "caption")
    assert page.locator(".item.text pre").first.inner_text() == "a swatch of red"
    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)


def test_audio_plays_inline(audio_output, open_page):
    rec = json.loads((audio_output / "index.json").read_text())["jobs"]
    assert len(rec) == 2
    page = open_page(write_gallery(audio_output))
    audio = page.locator("audio")
    assert audio.count() == 2 and audio.first.get_attribute("preload") == "none"
    assert page.evaluate("document.querySelector('audio').src").endswith(".wav")


def test_video_and_hostile_paths(tmp_path, open_page):
    rec = {"id": "v0", "workflow": "clip", "params": {"fps": 8}, "status": "completed", "texts": {}, "files": []}
    add_file(tmp_path / "v", rec, "movie", "video", b"\x00\x00\x00\x18ftypmp42", ".mp4")
    rec["files"].append({"var": "evil", "kind": "image", "path": "../../etc/passwd", "size": 1, "sha256": "x"})
    write_output(tmp_path / "v", [rec, {**rec, "id": "v1", "params": {"fps": 12}, "files": rec["files"][:1]}])
    page = open_page(write_gallery(tmp_path / "v"))
    assert page.locator("video").count() == 2 and page.locator("video").first.get_attribute("preload") == "none"
    assert "passwd" not in (tmp_path / "v" / "gallery.html").read_text()


def test_default_axes_skip_parameters_swept_together(tmp_path):
    recs = [{"id": f"{c}{s}", "workflow": "w", "status": "completed",
             "params": {"color": c, "label": {1: "red", 2: "blue"}[c], "strength": s}} for c in (1, 2) for s in (0.1, 0.2)]
    out = write_output(tmp_path / "o", recs)
    assert default_axes(load_results(out)) == ("label", "strength")
    data = page_data(load_results(out), {})
    assert data["values"]["strength"] == ["0.1", "0.2"]
    assert {p: codes[0] - 1 for p, codes in data["param_codes"].items()} == {"color": 0, "label": 0, "strength": 0}


def test_gallery_cli(demo_output, capsys):
    assert main(["gallery", str(demo_output)]) == 0
    assert capsys.readouterr().out.strip() == str(demo_output / "gallery.html")
    assert main(["gallery", str(demo_output / "nope")]) == 2
    assert "no such output folder" in capsys.readouterr().err
