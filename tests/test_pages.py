import numpy as np
import pytest
from PIL import Image

from conftest import has_poppler, render_page
from ocrcli.errors import InputError
from ocrcli.pages import MAX_PIXELS, iter_pages


def test_png_jpeg_bmp_decode_to_grayscale(tmp_path):
    page = render_page()
    for suffix in ("png", "jpg", "bmp"):
        path = tmp_path / f"p.{suffix}"
        Image.fromarray(page).convert("RGB").save(path)
        pages = list(iter_pages(path))
        assert len(pages) == 1
        assert pages[0].image.ndim == 2 and pages[0].image.dtype == np.uint8
        assert pages[0].image.shape == page.shape
        assert pages[0].number == 1


def test_every_tiff_frame_is_a_page(tmp_path):
    frames = [Image.fromarray(render_page(["page %d" % i])) for i in range(3)]
    path = tmp_path / "multi.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    pages = list(iter_pages(path))
    assert [p.number for p in pages] == [1, 2, 3]


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(render_page()).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    im.save(path, exif=exif)
    page = next(iter_pages(path))
    assert page.image.shape == (im.size[0], im.size[1])  # width and height swapped
    assert page.steps[0]["step"] == "exif_orientation"
    as_stored = next(iter_pages(path, exif=False))  # --no-exif
    assert as_stored.image.shape == (im.size[1], im.size[0]) and as_stored.steps == []


def test_alpha_palette_and_16bit_images(tmp_path):
    rgba = Image.new("RGBA", (50, 40), (0, 0, 0, 0))  # fully transparent: white paper after compositing
    rgba.save(tmp_path / "a.png")
    assert next(iter_pages(tmp_path / "a.png")).image.min() == 255
    Image.fromarray(render_page()).convert("P").save(tmp_path / "p.png")
    assert next(iter_pages(tmp_path / "p.png")).image.ndim == 2
    arr16 = (np.asarray(render_page()).astype(np.uint16) * 257)
    Image.fromarray(arr16).save(tmp_path / "d.png")
    page = next(iter_pages(tmp_path / "d.png"))
    assert abs(int(page.image.max()) - 245) <= 1


def test_damaged_files_raise_input_error_naming_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(InputError, match="bad.jpg"):
        list(iter_pages(bad))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.png"):
        list(iter_pages(empty))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    side = int(MAX_PIXELS ** 0.5) + 100
    path = tmp_path / "bomb.png"
    # A PNG header that claims side x side pixels; only the header is read before refusing.
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(InputError, match="limit"):
        list(iter_pages(path))


@pytest.mark.skipif(not has_poppler(), reason="PDF input needs poppler-utils (pdftoppm), not installed here")
def test_pdf_pages_are_rendered_one_by_one(tmp_path):
    frames = [Image.fromarray(render_page(["pdf page %d" % i])) for i in range(2)]
    path = tmp_path / "doc.pdf"
    frames[0].save(path, save_all=True, append_images=frames[1:], resolution=100.0)
    pages = list(iter_pages(path, dpi=100))
    assert [p.number for p in pages] == [1, 2]
    assert abs(pages[0].image.shape[1] - frames[0].size[0]) <= 2


@pytest.mark.skipif(not has_poppler(), reason="PDF input needs poppler-utils (pdftoppm), not installed here")
def test_corrupt_pdf_is_an_input_error(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n garbage")
    with pytest.raises(InputError, match="broken.pdf"):
        list(iter_pages(path))


@pytest.mark.skipif(not has_poppler(), reason="PDF input needs poppler-utils (pdftoppm), not installed here")
def test_a_huge_pdf_page_is_rendered_under_the_pixel_limit(tmp_path, monkeypatch):
    """A poster-sized page would be gigapixels at the dpi asked for: it is rendered at the dpi that
    keeps it under the limit, and the page before it at the dpi asked for."""
    import ocrcli.pages as pages

    monkeypatch.setattr(pages, "MAX_PIXELS", 2_000_000)
    letter = Image.fromarray(render_page(["a letter"]))  # 1200 px wide: 8 inches at 150 dpi
    poster = Image.new("L", (3000, 3000), 245)  # 20 inches square: 4 MP at 100 dpi
    poster.paste(letter, (0, 0))
    path = tmp_path / "poster.pdf"
    letter.save(path, save_all=True, append_images=[poster], resolution=150.0)
    first, second = [p.image for p in iter_pages(path, dpi=100)]
    assert abs(first.shape[1] - 800) <= 2
    assert 1_800_000 < second.size <= 2_000_000

def test_render_dpi_keeps_a_page_under_the_pixel_limit():
    from ocrcli.pages import render_dpi

    assert render_dpi((595, 842), 200) == 200  # A4
    assert render_dpi(None, 200) == 200
    dpi = render_dpi((14400, 14400), 200)  # 200 x 200 inches, the largest PDF page
    assert (200 * dpi) ** 2 <= MAX_PIXELS < (200 * (dpi + 1)) ** 2
