"""Malformed and unusual inputs, made at test time, through the real CLI in one batch.

Each bad file must give exactly one clear stderr line naming it; every good file in the same batch
still gets its output; the exit code is 1 when any file failed.
"""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import MODEL, has_poppler, render_page
from ocrcli.cli import app

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="shipped model missing")


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _bomb_png(side: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def build_corpus(folder):
    """Returns (bad names, good names) after writing them into ``folder``; all stems differ."""
    page = Image.fromarray(render_page(["A short note", "on two lines"], size=30, width=700))
    png, jpg = _png_bytes(page), _jpeg_bytes(page.convert("RGB"))
    tif = io.BytesIO()
    page.save(tif, format="TIFF")
    bad = {
        "zero-j.jpg": b"",
        "zero-p.png": b"",
        "zero-d.pdf": b"",
        "truncated-j.jpg": jpg[: len(jpg) // 3],
        "truncated-p.png": png[: len(png) // 2],
        "truncated-t.tif": tif.getvalue()[:200],
        "random-j.jpg": np.random.default_rng(0).bytes(5000),
        "random-p.png": np.random.default_rng(1).bytes(5000),
        "random-t.tiff": np.random.default_rng(2).bytes(5000),
        "random-b.bmp": np.random.default_rng(3).bytes(5000),
        "text-j.jpg": b"This is a text file, not a photo.\n" * 20,
        "html.png": b"<html><body>not an image</body></html>",
        "bomb.png": _bomb_png(100000),
        "header-only.png": png[:33],
    }
    if has_poppler():
        bad.update({
            "corrupt.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF",
            "text-d.pdf": b"just text",
        })
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    good = {
        "good.png": png,
        "good-j.jpg": jpg,
        "good with spaces.png": png,
        "-leading-dash.png": png,
        "quote's \"name\".png": png,
        "tiny1x1.png": _png_bytes(Image.new("L", (1, 1), 0)),
        "blank.png": _png_bytes(Image.new("L", (800, 600), 250)),
        "gray16.png": _png_bytes(Image.fromarray((np.asarray(page).astype(np.uint16) * 257))),
        "cmyk.jpg": _jpeg_bytes(page.convert("CMYK")),
        "palette.png": _png_bytes(page.convert("P")),
        "alpha.png": _png_bytes(page.convert("RGBA")),
    }
    for name, data in good.items():
        (folder / name).write_bytes(data)
    return sorted(bad), sorted(good)


def test_bad_inputs_fail_alone_with_one_line_each(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad, good = build_corpus(inputs)
    (inputs / "dir.png").mkdir()  # a folder named like an image: walked into, holds nothing
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["recognize", str(inputs), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    err_lines = result.stderr.splitlines()
    for name in bad:
        mentions = [line for line in err_lines if name in line]
        assert len(mentions) == 1, (name, mentions)
        assert not (out / (os.path.splitext(name)[0] + ".txt")).exists()
    for name in good:
        assert (out / (os.path.splitext(name)[0] + ".txt")).exists(), name
    assert f"{len(good)} done, {len(bad)} failed" in result.stderr
    assert "limit" in next(line for line in err_lines if "bomb.png" in line)
    assert (out / "blank.txt").read_text() == ""
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left
