"""Issue 19, gallery: stale bookmarks, data that reads like a placeholder, labels in shared cells, X != Y."""

from __future__ import annotations

from typing import Any

from comfykit_batch.report.gallery import fill, write_gallery

from .conftest import add_file, png_bytes, write_output


def _goto(page, url: str) -> None:
    """Open ``url`` in an already open page and wait for the new render (a hash change alone does not reload)."""
    page.goto("about:blank")
    page.goto(url)
    page.wait_for_selector("body[data-rendered]", state="attached")


def test_stale_bookmark_falls_back_to_defaults(demo_output, open_page):
    gallery = write_gallery(demo_output)
    page = open_page(gallery)
    for stale in ("x=nosuch", "x=nosuch&y=gone&v=nope&status=weird", "f.gone=1", "f.label=99&f.seed=abc&f.__proto__=0"):
        _goto(page, f"{gallery.resolve().as_uri()}#{stale}")
        assert page.locator("th.col-label").all_inner_texts() == ["label = red", "label = blue", "label = green"], stale
        assert page.locator("th.row-label").all_inner_texts() == ["strength = 0.0", "strength = 0.5"], stale
        assert page.locator("#summary").inner_text() == "10 of 10 jobs shown, 1 failed", stale
        assert page.locator(".item img").count() == 9, stale
        assert page.input_value("#axis-x") == "label" and page.input_value("#var") == "swatch", stale
    # what is still valid in a bookmark is kept, only the stale part falls back
    _goto(page, f"{gallery.resolve().as_uri()}#x=seed&y=nosuch&f.label=0")
    assert page.locator("th.col-label").all_inner_texts() == ["seed = 1", "seed = 2"]
    assert page.locator("th.row-label").all_inner_texts() == ["strength = 0.0", "strength = 0.5"]
    assert page.locator("#summary").inner_text() == "4 of 10 jobs shown, 0 failed"
    # page.errors (checked by open_page) stays empty: no script error on any of them


def test_placeholders_in_data_come_out_verbatim(tmp_path, open_page):
    odd = ["__TITLE__", "__DATA__", "$& $' $1 \\1 \\g<0>", "</script><!-- x", "\u2028 end"]
    recs: list[dict[str, Any]] = []
    for i, value in enumerate(odd):
        rec: dict[str, Any] = {"id": f"j{i}", "workflow": "__TITLE__", "status": "completed", "files": [],
                               "params": {"word": value, "__DATA__": i}, "texts": {"__TITLE__": [value]}}
        add_file(tmp_path / "o", rec, "__DATA__", "image", png_bytes((200, 10, 10)), ".png")
        recs.append(rec)
    out = write_output(tmp_path / "o", recs, name="__DATA__ and __TITLE__")
    page = open_page(write_gallery(out))
    assert page.title() == f"__DATA__ and __TITLE__: {len(odd)} jobs"
    assert page.locator("h1").inner_text() == f"__DATA__ and __TITLE__: {len(odd)} jobs"
    words = page.locator('select.filter[data-param="word"] option').all_inner_texts()
    assert words == ["(all)", *odd]
    assert page.locator("#var option").all_inner_texts() == ["(all)", "__DATA__", "__TITLE__"]
    assert page.evaluate("D.values.word") == odd and page.evaluate("job(0).w") == "__TITLE__"
    hover = page.locator(".item").first.get_attribute("title")
    assert "word = __TITLE__" in hover and "workflow = __TITLE__" in hover
    assert page.locator(".item pre.caption").all_inner_texts() == odd


def test_fill_is_one_pass():
    assert fill("<t>__A__</t>__B__", {"__A__": "__B__", "__B__": "__A__ \\1 $&"}) == "<t>__B__</t>__A__ \\1 $&"


def test_shared_cells_label_each_image_with_what_differs(demo_output, open_page):
    page = open_page(write_gallery(demo_output))
    red = page.locator('td.cell[data-x="red"][data-y="0.0"] .item')
    assert red.count() == 2
    assert red.locator(".tag").all_inner_texts() == ["seed = 1", "seed = 2"]
    # the label sits on every kind of item: a failed job's too
    green = page.locator('td.cell[data-x="green"][data-y="0.5"] .item')
    assert green.locator(".tag").all_inner_texts() == ["seed = 1", "seed = 2"]
    assert "out of memory" in green.nth(1).inner_text()
    page.select_option("#var", "caption")
    assert page.locator('td.cell[data-x="red"][data-y="0.0"] .item.text .tag').all_inner_texts() == ["seed = 1", "seed = 2"]
    # one job per cell: nothing to tell apart, no label
    page.select_option('select.filter[data-param="seed"]', label="2")
    assert page.locator(".item").count() == 5 and page.locator(".tag").count() == 0
    # no axis at all: one cell, each item names its label, strength and seed
    page.select_option('select.filter[data-param="seed"]', label="(all)")
    page.select_option("#axis-x", "")
    page.select_option("#axis-y", "")
    page.select_option("#var", "swatch")
    tags = page.locator(".tag").all_inner_texts()
    assert len(tags) == 10 and tags[0] == "label = red, strength = 0.0, seed = 1"


def test_shared_cell_of_repeats_and_workflows(tmp_path, open_page):
    recs: list[dict[str, Any]] = []
    for i, wf in enumerate(("a", "a", "b")):
        rec: dict[str, Any] = {"id": f"r{i}", "workflow": wf, "status": "completed", "params": {"k": 1}, "texts": {}, "files": []}
        add_file(tmp_path / "o", rec, "img", "image", png_bytes((10, 10, 200)), ".png")
        recs.append(rec)
    page = open_page(write_gallery(write_output(tmp_path / "o", recs)))
    # the workflow differs in the cell; the two of workflow a (repeats) are told apart by their job ids
    assert page.locator(".tag").all_inner_texts() == ["workflow = a, job = r0", "workflow = a, job = r1", "workflow = b"]
    page = open_page(write_gallery(write_output(tmp_path / "o", recs[:2])))
    assert page.locator(".tag").all_inner_texts() == ["job = r0", "job = r1"]


def test_x_and_y_are_never_the_same_parameter(demo_output, open_page):
    gallery = write_gallery(demo_output)
    page = open_page(gallery)
    assert (page.input_value("#axis-x"), page.input_value("#axis-y")) == ("label", "strength")
    page.select_option("#axis-x", "strength")  # Y's parameter picked for X: the axes swap
    assert (page.input_value("#axis-x"), page.input_value("#axis-y")) == ("strength", "label")
    assert page.locator("th.col-label").all_inner_texts() == ["strength = 0.0", "strength = 0.5"]
    assert page.locator("th.row-label").all_inner_texts() == ["label = red", "label = blue", "label = green"]
    assert "x=strength&y=label" in page.url
    page.select_option("#axis-y", "strength")  # and back, from the other picker
    assert (page.input_value("#axis-x"), page.input_value("#axis-y")) == ("label", "strength")
    page.select_option("#axis-x", "")
    page.select_option("#axis-y", "label")
    assert (page.input_value("#axis-x"), page.input_value("#axis-y")) == ("", "label")
    page.select_option("#axis-x", "label")  # Y's parameter again, X was (none): Y takes (none)
    assert (page.input_value("#axis-x"), page.input_value("#axis-y")) == ("label", "")
    assert page.locator("th.row-label").all_inner_texts() == ["all"]
    # a bookmark with the same parameter on both: Y falls back to a default that differs
    for bookmark, axes in (("x=label&y=label", ("label", "strength")), ("x=strength&y=strength", ("strength", "label")),
                           ("x=seed&y=seed", ("seed", "strength"))):
        _goto(page, f"{gallery.resolve().as_uri()}#{bookmark}")
        assert (page.input_value("#axis-x"), page.input_value("#axis-y")) == axes, bookmark
        assert page.locator("th.row-label").count() == {"strength": 2, "label": 3}[axes[1]], bookmark
