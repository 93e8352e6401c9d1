"""A tiny run of bench/gallery.py, so it cannot rot (its figures are printed, never asserted on speed)."""

from __future__ import annotations


def test_gallery_bench_smoke(browser):
    from bench.gallery import measure

    out = measure(16, browser=browser)
    assert out["jobs"] == 16 and out["cells"] == 16 and out["after_scrolling_to_end"]["thumbs_loaded"] == 16
    assert out["after_open"]["js_heap_used_mb"] > 0 and out["after_open"]["chromium_pss_mb"] > 0
