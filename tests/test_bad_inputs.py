"""Malformed and unusual inputs, made at test time, through the real CLI in one batch.

Each bad file must give exactly one clear stderr line naming it; every good file in the same batch
still gets its output; the exit code is 1 when any file failed.
"""

import io
import json
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
            "encrypted.pdf": _encrypted_pdf(page),
            "no-pages.pdf": _empty_pdf(),
        })
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    os.symlink("loop-b.png", folder / "loop-a.png")  # a symlink loop
    os.symlink("loop-a.png", folder / "loop-b.png")
    bad["loop-a.png"] = bad["loop-b.png"] = b""
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
        "exif-rotated.jpg": _exif_rotated_jpeg(page),
        "two-frames.tif": _tiff_bytes([page, page]),
        "line\nbreak.png": png,
        "tab\tname.png": png,
    }
    for name, data in good.items():
        (folder / name).write_bytes(data)
    latin1 = os.fsdecode(b"caf\xe9-latin1.png")  # a name that is not valid UTF-8
    (folder / latin1).write_bytes(png)
    good[latin1] = png
    return sorted(bad), sorted(good)


def _exif_rotated_jpeg(page: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    return _jpeg_bytes(page.convert("RGB").rotate(90, expand=True), exif=exif.tobytes())


def _tiff_bytes(frames: list[Image.Image], compression: str = "tiff_deflate") -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:], compression=compression)
    return buf.getvalue()


def _tiff_with_corrupt_frame(page: Image.Image) -> bytes:
    """Three deflate-compressed frames; the second frame's pixel data is overwritten with garbage."""
    data = bytearray(_tiff_bytes([page, page, page]))
    with Image.open(io.BytesIO(bytes(data))) as im:
        im.seek(1)
        offset, count = im.tag_v2[273][0], im.tag_v2[279][0]  # StripOffsets, StripByteCounts
    data[offset:offset + count] = np.random.default_rng(7).bytes(count)
    return bytes(data)


def _encrypted_pdf(page: Image.Image) -> bytes:
    pypdf = pytest.importorskip("pypdf")
    buf = io.BytesIO()
    page.convert("RGB").save(buf, format="PDF")
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(buf.getvalue())))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")  # RC4 needs no extra crypto package
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _empty_pdf() -> bytes:
    pypdf = pytest.importorskip("pypdf")
    out = io.BytesIO()
    pypdf.PdfWriter().write(out)
    return out.getvalue()


def test_bad_inputs_fail_alone_with_one_line_each(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad, good = build_corpus(inputs)
    (inputs / "dir.png").mkdir()  # a folder named like an image: walked into, holds nothing
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["recognize", str(inputs), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert len(bad) + len(good) + 1 >= 30
    err_lines = result.stderr.splitlines()
    for name in bad:
        mentions = [line for line in err_lines if name in line]
        assert len(mentions) == 1, (name, mentions)
        assert not (out / (os.path.splitext(name)[0] + ".txt")).exists()
    if has_poppler():
        assert "password" in next(line for line in err_lines if "encrypted.pdf" in line)
        assert "no pages" in next(line for line in err_lines if "no-pages.pdf" in line)
    for name in good:
        assert (out / (os.path.splitext(name)[0] + ".txt")).exists(), name
    assert f"{len(good)} done, {len(bad)} failed" in result.stderr
    assert "limit" in next(line for line in err_lines if "bomb.png" in line)
    assert (out / "blank.txt").read_text() == ""
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left


def test_corrupt_tiff_frame_loses_only_that_page(tmp_path):
    page = Image.fromarray(render_page(["A short note", "on two lines"], size=30, width=700))
    path = tmp_path / "scan.tif"
    path.write_bytes(_tiff_with_corrupt_frame(page))
    result = CliRunner().invoke(app, ["recognize", str(path), "-f", "json", "-f", "txt"])
    assert result.exit_code == 1
    messages = [line for line in result.stderr.splitlines() if "scan.tif" in line]
    assert len(messages) == 1 and "page 2" in messages[0] and "other pages were transcribed" in messages[0]
    doc = json.loads((tmp_path / "scan.json").read_text(encoding="utf-8"))
    assert [p["number"] for p in doc["pages"]] == [1, 3]
    assert len(doc["errors"]) == 1 and "page 2" in doc["errors"][0]
    assert (tmp_path / "scan.txt").read_text(encoding="utf-8").count("\f") == 1


def test_file_vanishing_between_listing_and_reading(tmp_path):
    from conftest import FakeRecognizer
    from ocrcli.config import RunConfig
    from ocrcli.inputs import resolve_inputs
    from ocrcli.output import RunInfo
    from ocrcli.pipeline import run_batch

    png = _png_bytes(Image.fromarray(render_page(["gone soon"], size=30, width=500)))
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(png)
    files = resolve_inputs([str(tmp_path)]).files
    (tmp_path / "b.png").unlink()  # removed after the listing, before it is read
    outcomes = list(run_batch(files, RunConfig(), FakeRecognizer(), RunInfo("fake", "0" * 64, "cpu")))
    assert [o.error is None for o in outcomes] == [True, False, True]
    assert "b.png" in outcomes[1].error and "No such file" in outcomes[1].error
    assert (tmp_path / "a.txt").exists() and (tmp_path / "c.txt").exists() and not (tmp_path / "b.txt").exists()


def test_permission_denied_fails_alone(tmp_path, monkeypatch):
    """The same as the next test, for runs as root (CI): opening the file raises EACCES."""
    import ocrcli.pages

    png = _png_bytes(Image.fromarray(render_page(["locked"], size=30, width=400)))
    (tmp_path / "ok.png").write_bytes(png)
    (tmp_path / "locked.png").write_bytes(png)
    real_open = ocrcli.pages.Image.open

    def guarded_open(path, *args, **kwargs):
        if str(path).endswith("locked.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(ocrcli.pages.Image, "open", guarded_open)
    result = CliRunner().invoke(app, ["recognize", str(tmp_path)])
    assert result.exit_code == 1
    line = next(line for line in result.stderr.splitlines() if "locked.png" in line)
    assert line.endswith("locked.png: cannot read (Permission denied)")
    assert (tmp_path / "ok.txt").exists() and not (tmp_path / "locked.txt").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: file permissions do not stop root from reading "
                    "(test_permission_denied_fails_alone covers it by simulation)")
def test_unreadable_file_fails_alone(tmp_path):
    png = _png_bytes(Image.fromarray(render_page(["locked"], size=30, width=400)))
    (tmp_path / "ok.png").write_bytes(png)
    locked = tmp_path / "locked.png"
    locked.write_bytes(png)
    locked.chmod(0)
    result = CliRunner().invoke(app, ["recognize", str(tmp_path)])
    assert result.exit_code == 1
    assert "locked.png" in result.stderr and "ermission denied" in result.stderr
    assert (tmp_path / "ok.txt").exists() and not (tmp_path / "locked.txt").exists()


def test_bad_file_with_newline_in_name_gives_one_line(tmp_path):
    (tmp_path / "bad\nname.png").write_bytes(b"not an image")
    result = CliRunner().invoke(app, ["recognize", str(tmp_path), "-q"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad\\nname.png" in lines[0]
