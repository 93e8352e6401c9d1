"""Issue 19: large images, labels in any language, labels that keep their value, unique --z files, grid's own
default file name, one-line argument errors."""

from __future__ import annotations

import json
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image, ImageDraw, ImageFont

from comfykit_batch.cli import main
from comfykit_batch.errors import UsageError
from comfykit_batch.report import draw as d
from comfykit_batch.report import thumbs
from comfykit_batch.report.grid import MISSING_BG, TITLE_MAX, make_grid
from tests.helpers.manifests import write_manifest

from .conftest import COLORS, add_file, png_bytes, write_output

LABELS = {"Chinese": "中文标签", "Hebrew": "שלום עולם", "Arabic": "مرحبا بالعالم", "Cyrillic": "Привет", "Latin": "café"}


def huge_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 1-bit PNG of this size, ~110 kB: its rows are all zeros, which compress to almost nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows, packer = b"\x00" * (1 + (width + 7) // 8) * 1000, zlib.compressobj(9)
    body = b"".join(packer.compress(rows) for _ in range(height // 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _count(img: Image.Image, color: tuple[int, int, int], box: tuple[int, int, int, int] | None = None) -> int:
    """Pixels of exactly this colour (in ``box`` if given)."""
    part = img.convert("RGB").crop(box) if box else img.convert("RGB")
    return sum(n for n, c in part.getcolors(1 << 20) or [] if c == color)


def _record(i: int, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": f"j{i:02d}", "workflow": "w", "params": params, "status": "completed", "texts": {}, "files": [], **extra}


# -- 1. a large image ------------------------------------------------------------------------------------------------


def test_a_huge_png_leaves_the_run_completed_and_its_reports_made(tmp_path, fake_comfy, workflows, capsys):
    """30000x30000 once ended the run 'internal error (DecompressionBombError)'; gallery and grid failed alike."""
    fake_comfy.script["GET /view"] = deque([(200, huge_png(), {"X-Kind": "huge"})])  # the first output; the next is 1 px
    m = write_manifest(tmp_path, [{"name": "f", "url": fake_comfy.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1, 2], "height": [1]}})
    data = yaml.safe_load(m.read_text())
    m.write_text(yaml.safe_dump({**data, "report": {"grid": {"x": "width", "y": "height"}}}, sort_keys=False))
    out = tmp_path / "out"

    assert main([str(m), "-q"]) == 0
    said = capsys.readouterr()
    assert "internal error" not in said.err and "could not be made" not in said.out + said.err
    jobs = json.loads((out / "index.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["completed", "completed"]
    assert (out / "gallery.html").is_file() and (out / "grid.png").is_file()
    huge = next(f for j in jobs for f in j["files"] if (out / f["path"]).stat().st_size > 100_000)
    thumb = Image.open(out / thumbs.thumb_name(huge))
    assert thumb.size == (thumbs.SIZE, thumbs.SIZE) and _count(thumb, (0, 0, 0)) == 0, "a card, not a black decode"

    assert main(["gallery", str(out)]) == 0
    assert main(["grid", str(out), "--x", "width", "--cell", "64"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(out / "grid_width.png")
    assert _count(Image.open(out / "grid_width.png"), MISSING_BG) > 64 * 32, "the huge one is a grey card with its reason"


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_a_png_becomes_a_card(tmp_path, monkeypatch):
    monkeypatch.setattr(thumbs, "MAX_DECODE_PIXELS", 10_000)  # 400 x 400 is "too large"; a 1/8 JPEG decode is 50 x 50
    Image.new("RGB", (400, 400), COLORS["red"]).save(tmp_path / "big.jpg", quality=95)
    (tmp_path / "big.png").write_bytes(png_bytes(COLORS["red"], (400, 400)))

    small = thumbs.preview(tmp_path / "big.jpg", 32)
    assert max(small.size) == 32 and all(abs(a - b) < 12 for a, b in zip(small.getpixel((16, 16)), COLORS["red"], strict=True))
    with pytest.raises(thumbs.TooLargeError, match=r"^too large to preview: 400x400$"):
        thumbs.preview(tmp_path / "big.png", 32)
    assert thumbs.make_thumb(tmp_path / "big.png", tmp_path / "t.jpg", 64)
    assert Image.open(tmp_path / "t.jpg").size == (64, 64)


# -- 2. labels in any language ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", list(LABELS))
def test_every_character_of_a_label_has_a_real_glyph(script):
    """Pillow's own font draws 中, ש, م, Ж and even é as its missing-glyph box; the grid's fonts draw them."""
    text = LABELS[script]
    fonts = d.face(16)
    for part, fnt in fonts.runs(f"label = {text}"):
        missing = [c for c in part if not c.isspace() and not d.has_glyph(fnt, c)]
        assert not missing, f"{missing} drawn as boxes; install fonts-noto-cjk and fonts-dejavu-core (found: {d.system_fonts()})"


def test_the_glyph_check_sees_a_missing_glyph():
    pillow = ImageFont.load_default(16)
    assert d.has_glyph(pillow, "a") and not d.has_glyph(pillow, "中")


def test_font_option_comes_first_and_others_fill_in(tmp_path, demo_output):
    own = tmp_path / "own.ttf"
    own.write_bytes(ImageFont.load_default(16).path.getvalue())  # Pillow's own font: Latin letters only
    fonts = d.face(16, str(own))
    assert fonts.font_for("a") is fonts.fonts[0] and fonts.font_for("中") is not fonts.fonts[0]
    (path,) = make_grid(demo_output, "strength", "label", cell=32, out=tmp_path / "f.png", font=str(own))
    assert path.is_file()
    with pytest.raises(UsageError, match=r"--font .*nope.ttf: not a font file Pillow can read"):
        make_grid(demo_output, "strength", "label", out=tmp_path / "x.png", font=str(tmp_path / "nope.ttf"))


def test_grid_of_labels_in_five_scripts_draws_them(tmp_path):
    """A grid with such rows, columns and text cells (a text output is drawn as text, in the same fonts)."""
    records = []
    for i, text in enumerate(LABELS.values()):
        rec = _record(i, {"label": text, "seed": 1}, texts={"caption": [f"{text} 一段没有空格的很长的中文说明文字"]})
        add_file(tmp_path / "out", rec, "img", "image", png_bytes(COLORS["blue"], (16, 16)), ".png")
        records.append(rec)
    out = write_output(tmp_path / "out", records)
    (path,) = make_grid(out, "label", "seed", var="caption", cell=128, out=tmp_path / "t.png")
    img = Image.open(path)
    dark = sum(n for n, c in img.convert("L").getcolors(256) or [] if c < 90)
    assert not _count(img, COLORS["blue"]) and dark > 1000, "the captions are drawn as text"
    (path,) = make_grid(out, "seed", "label", cell=64, out=tmp_path / "i.png")
    assert _count(Image.open(path), COLORS["blue"]) == 5 * 64 * 64


# -- 3. labels fit, keeping the value ---------------------------------------------------------------------------------


def _probe() -> ImageDraw.ImageDraw:
    return ImageDraw.Draw(Image.new("RGB", (1, 1)))


def test_a_narrow_column_label_keeps_its_value():
    """--cell 64 drew every column as 'strength …'."""
    fonts = d.face(12)
    text = d.fit_label(_probe(), "strength", "0.5", fonts, 64)
    assert text.endswith("… = 0.5") and d.text_width(_probe(), text, fonts) <= 64
    long = d.fit_label(_probe(), "prompt", "a red fox " * 50 + "in the snow", fonts, 120)
    assert long.startswith("a red") and long.endswith("snow") and "…" in long and d.text_width(_probe(), long, fonts) <= 120


def test_wrap_breaks_text_without_spaces_and_marks_the_rest():
    fonts = d.face(12)
    lines = d.wrap(_probe(), "中" * 200, fonts, 100, 3)
    assert len(lines) == 3 and lines[0].startswith("中中") and lines[-1].endswith("…")
    assert all(d.text_width(_probe(), line, fonts) <= 100 for line in lines)


def test_a_3000_character_label_does_not_widen_the_grid(tmp_path):
    """It made a 33,793 px wide image; titles and labels now fit the grid (a title may widen it to TITLE_MAX).

    A value with line breaks (a prompt) is drawn on its line too."""
    long = "word " * 600
    records = []
    for i, (prompt, seed) in enumerate([(long, 1), (long, 2), ("short", 1), ("two\nlines", 2)]):
        rec = _record(i, {"prompt": prompt, "seed": seed})
        add_file(tmp_path / "out", rec, "img", "image", png_bytes(COLORS["red"]), ".png")
        records.append(rec)
    out = write_output(tmp_path / "out", records)
    for x, y, where in (("seed", "prompt", []), ("prompt", "seed", []), ("seed", None, [f"prompt={long}"])):
        for path in make_grid(out, x, y, where=where, cell=64, out=tmp_path / f"{x}.png"):
            assert Image.open(path).width <= TITLE_MAX, (x, y)
    for path in make_grid(out, "seed", z="prompt", cell=64, out=tmp_path / "z.png"):
        assert Image.open(path).width <= TITLE_MAX


# -- 4. --z file names ------------------------------------------------------------------------------------------------


def test_z_values_that_sanitise_alike_get_their_own_files(tmp_path):
    records = []
    for i, label in enumerate(["red fox", "red/fox", "Red fox"]):
        rec = _record(i, {"label": label, "seed": 1})
        add_file(tmp_path / "out", rec, "img", "image", png_bytes(COLORS["red"]), ".png")
        records.append(rec)
    out = write_output(tmp_path / "out", records)
    paths = make_grid(out, "seed", z="label", out=tmp_path / "g.png", cell=32)
    assert [p.name for p in paths] == ["g_label-red_fox.png", "g_label-red_fox-2.png", "g_label-Red_fox-3.png"]
    assert all(p.is_file() for p in paths)


# -- 5. grid without -o ------------------------------------------------------------------------------------------------


def test_grid_command_without_o_keeps_the_runs_grid_png(demo_output, capsys):
    (demo_output / "grid.png").write_bytes(b"the report's grid")
    assert main(["grid", str(demo_output), "--x", "strength", "--y", "label", "--where", "seed=1"]) == 0
    assert capsys.readouterr().out.strip() == str(demo_output / "grid_strength_by_label.png")
    assert (demo_output / "grid.png").read_bytes() == b"the report's grid"
    assert main(["grid", str(demo_output), "--x", "seed", "--z", "label"]) == 0
    assert sorted(p.name for p in demo_output.glob("grid_seed*.png")) == [
        "grid_seed_label-blue.png", "grid_seed_label-green.png", "grid_seed_label-red.png"]


def test_grid_help_names_the_default_file(capsys):
    with pytest.raises(SystemExit):
        main(["grid", "x", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default OUTPUT/grid_X_by_Y.png" in text and "--font PATH" in text


# -- 6. one-line argument errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (["--x", "seed", "--where", "nosuch=1"], "--where nosuch: no such parameter"),
    (["--x", "seed", "--where", "nosuch"], "--where nosuch: expected PARAM=VALUE"),
    (["--x", "label", "--y", "label"], "--x and --y are both 'label': expected a different parameter on each axis"),
    (["--x", "seed", "--y", "label", "--z", "seed"], "--x and --z are both 'seed'"),
    (["--x", "seed", "--cell", "big"], "argument --cell: invalid int value: 'big'"),
    (["--x", "seed", "--cell", "4"], "cell size 4: expected at least 16 px"),
    (["--y", "seed"], "the following arguments are required: --x"),
    (["--x", "seed", "--font", "/nonexistent/font.ttf"], "--font /nonexistent/font.ttf: not a font file Pillow can read"),
])
def test_grid_argument_errors_are_one_line(demo_output, capsys, args, expected):
    assert main(["grid", str(demo_output), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and expected in err, err
    assert not list(Path(demo_output).glob("grid_*.png"))
