"""Decode input files into pages, one at a time: images (EXIF-oriented), every TIFF frame, PDF pages."""

from __future__ import annotations

import errno
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ocrcli.documents import Page
from ocrcli.errors import InputError
from ocrcli.inputs import PDF_SUFFIXES

# A 600-dpi A3 scan is ~70 MP; anything past this is refused before it is decoded.
MAX_PIXELS = 120_000_000
ALL_PAGES = 10**9  # a last page for pdfinfo beyond any PDF's: it lists them all


def _to_gray(im: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 grayscale; transparency is composited on white, 16-bit scaled down."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        hi = arr.max() if arr.size else 1
        scale = 255.0 / (65535.0 if hi > 255 else 255.0)
        return np.clip(arr * scale, 0, 255).astype(np.uint8)
    if im.mode == "F":
        return np.clip(np.asarray(im), 0, 255).astype(np.uint8)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    if im.mode == "1":
        im = im.convert("L")
    return np.asarray(im.convert("L"), dtype=np.uint8)


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{path}: image of {width}x{height} pixels is over the {MAX_PIXELS // 1_000_000} MP limit",
            hint="downscale it first, e.g. to 300 dpi",
        )
    if width < 1 or height < 1:
        raise InputError(f"{path}: image has no pixels")


def _image_pages(path: Path, exif: bool, on_page_error: Callable[[InputError], None] | None) -> Iterator[Page]:
    try:
        with warnings.catch_warnings():  # _check_size reports big images itself, with a hint
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
        with opened as im:
            _check_size(path, *im.size)
            frames = getattr(im, "n_frames", 1)
            for number, frame in enumerate(ImageSequence.Iterator(im), start=1):
                _check_size(path, *frame.size)
                try:
                    orientation = frame.getexif().get(0x0112, 1) if exif and frames == 1 else 1
                    gray = _to_gray(ImageOps.exif_transpose(frame) if orientation not in (1, None) else frame)
                except Exception as exc:  # noqa: BLE001 - PIL's decoders raise many types on damaged data
                    error = InputError(f"{path}: page {number} could not be decoded ({_describe(exc)})")
                    if on_page_error is None or frames == 1:
                        raise error from None
                    on_page_error(error)  # a damaged frame among good ones: the others are still read
                    continue
                page = Page(gray, number, (gray.shape[1], gray.shape[0]))
                if orientation not in (1, None):
                    page.steps.append({"step": "exif_orientation", "orientation": int(orientation)})
                yield page
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a readable image (unknown or damaged format)") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image is over the {MAX_PIXELS // 1_000_000} MP limit (decompression-bomb guard)",
                         hint="downscale it first, e.g. to 300 dpi") from None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOENT, errno.ELOOP, errno.EISDIR, errno.EIO):
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        raise InputError(f"{path}: image could not be decoded ({_describe(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises TypeError, KeyError, struct.error... on damaged headers
        raise InputError(f"{path}: image could not be decoded ({_describe(exc)})") from None


def _describe(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:160]
    return text if isinstance(exc, OSError) and text else f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pdf_page_sizes(info: dict) -> dict[int, tuple[float, float]]:
    """Each page's size in points (1/72 inch) from ``pdfinfo`` run over all pages; pages it does
    not list are left out."""
    sizes = {}
    for key, value in info.items():
        page, size = re.fullmatch(r"Page\s+(\d+) size", key), re.match(r"([\d.]+) x ([\d.]+) pts", str(value))
        if page and size:
            sizes[int(page.group(1))] = (float(size.group(1)), float(size.group(2)))
    return sizes


def render_dpi(size: tuple[float, float] | None, dpi: int) -> int:
    """``dpi``, or less for a page so large (in points) that it would render over ``MAX_PIXELS``
    (a poster or drawing: a 200-inch page at 200 dpi is 1.6 GP)."""
    if size is None:
        return dpi
    pixels = (size[0] / 72 * dpi) * (size[1] / 72 * dpi)
    return dpi if pixels <= MAX_PIXELS else max(1, int(dpi * (MAX_PIXELS / pixels) ** 0.5))


def _pdf_pages(path: Path, dpi: int, on_page_error: Callable[[InputError], None] | None) -> Iterator[Page]:
    try:
        from pdf2image import convert_from_path, pdfinfo_from_path
        from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError(f"{path}: PDF support needs the pdf2image package") from None
    try:
        # An absolute path: a name starting with '-' must never look like an option to poppler.
        # Every page's size too (pdfinfo stops at the last page): pages too large are rendered smaller.
        info = pdfinfo_from_path(str(path.absolute()), first_page=1, last_page=ALL_PAGES)
    except PDFInfoNotInstalledError:
        raise InputError(f"{path}: PDF support needs poppler", hint="apt-get install poppler-utils") from None
    except (PDFPageCountError, PDFSyntaxError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else "damaged"
        if "password" in detail.lower():
            raise InputError(f"{path}: PDF is encrypted (password protected)", hint="decrypt it first, e.g. qpdf --decrypt") from None
        if "last page (0)" in detail:
            raise InputError(f"{path}: PDF has no pages") from None
        raise InputError(f"{path}: not a readable PDF ({detail})") from None
    count = int(info.get("Pages", 0))
    if count < 1:
        raise InputError(f"{path}: PDF has no pages")
    sizes = _pdf_page_sizes(info)
    for number in range(1, count + 1):  # one page at a time keeps memory flat for long PDFs
        page_dpi = render_dpi(sizes.get(number), dpi)
        try:
            images = convert_from_path(str(path.absolute()), dpi=page_dpi, first_page=number, last_page=number, grayscale=True)
        except Exception as exc:  # pdf2image surfaces poppler failures as assorted exception types
            images, detail = [], f" ({' '.join(str(exc).split())[:160]})"
        else:
            detail = ""
        if not images:
            error = InputError(f"{path}: page {number} could not be rendered{detail}")
            if on_page_error is None or count == 1:
                raise error
            on_page_error(error)
            continue
        gray = _to_gray(images[0])
        yield Page(gray, number, (gray.shape[1], gray.shape[0]))


def iter_pages(path: Path, dpi: int = 200, exif: bool = True,
               on_page_error: Callable[[InputError], None] | None = None) -> Iterator[Page]:
    """Yield the pages of one input file in order (grayscale), decoding each only when asked for.

    ``exif``: turn photos upright according to their EXIF orientation tag. A page that cannot be
    decoded raises InputError, unless ``on_page_error`` is given: then, in a multi-page file, it is
    called with the error and the remaining pages are still read.
    """
    path = Path(path)
    # PIL's own bomb check (it also opens the rendered PDF pages) at our limit: a second line of
    # defence for images, and no warning for a PDF page render_dpi kept under it.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes)")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix.lower() in PDF_SUFFIXES:
        yield from _pdf_pages(path, dpi, on_page_error)
    else:
        yield from _image_pages(path, exif, on_page_error)
