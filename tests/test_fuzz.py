"""Fuzzing the path from bytes to line crops: decoding, preprocessing and segmentation.

Any exception other than InputError (a clear "this file cannot be read") is a bug. The test suite
runs a bounded number of examples; `make fuzz` runs many more (OCRCLI_FUZZ_EXAMPLES).
"""

import io
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import render_page
from ocrcli.config import PreprocessConfig
from ocrcli.documents import Page
from ocrcli.errors import InputError
from ocrcli.pages import iter_pages
from ocrcli.preprocess import preprocess
from ocrcli.recognition.lineimage import fit_rows, normalize_line
from ocrcli.segment import find_lines, line_crops

EXAMPLES = int(os.environ.get("OCRCLI_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_PAGE = Image.fromarray(render_page(["Fuzzing a short note", "with two lines"], size=24, width=500))


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    image = _PAGE.convert("RGB") if fmt == "JPEG" else _PAGE
    image.save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "TIFF", "BMP")}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp"}


def _through_the_pipeline(page: Page) -> None:
    prepared = preprocess(page, PreprocessConfig())
    lines = find_lines(prepared)
    crops = line_crops(prepared, lines)
    h, w = prepared.image.shape[:2]
    for line, crop in zip(lines, crops):
        assert 0 <= line.bbox.x0 < line.bbox.x1 <= w and 0 <= line.bbox.y0 < line.bbox.y1 <= h
        assert crop.image.ndim == 2 and crop.image.dtype == np.uint8


@FUZZ
@given(fmt=st.sampled_from(sorted(SEEDS)), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=12),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_damaged_files_fail_cleanly_or_decode(tmp_path_factory, fmt, edits, cut):
    data = bytearray(SEEDS[fmt])
    for where, value in edits:  # overwrite bytes anywhere, headers included
        data[min(len(data) - 1, int(where * len(data)))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path_factory.mktemp("fuzz") / f"f{SUFFIX[fmt]}"
    path.write_bytes(bytes(data))
    try:
        for page in iter_pages(path):
            _through_the_pipeline(page)
    except InputError:
        pass


@FUZZ
@given(height=st.integers(1, 400), width=st.integers(1, 400), kind=st.sampled_from(["noise", "flat", "stripes", "blobs", "text"]),
       seed=st.integers(0, 2**32 - 1), level=st.integers(0, 255))
def test_any_pixels_go_through_preprocessing_and_segmentation(height, width, kind, seed, level):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        image = rng.integers(0, 256, (height, width), dtype=np.uint8)
    elif kind == "flat":
        image = np.full((height, width), level, np.uint8)
    elif kind == "stripes":
        image = np.full((height, width), 255, np.uint8)
        image[:: max(1, level % 17 + 1)] = rng.integers(0, 120)
    elif kind == "blobs":
        image = np.full((height, width), 240, np.uint8)
        for _ in range(int(rng.integers(1, 30))):
            y, x = rng.integers(0, height), rng.integers(0, width)
            image[y:y + int(rng.integers(1, 60)), x:x + int(rng.integers(1, 200))] = rng.integers(0, 100)
    else:
        text = np.asarray(_PAGE)
        image = np.array(Image.fromarray(text).resize((width, height)))
    _through_the_pipeline(Page(image, 1, (width, height)))
    kept = fit_rows(image)  # read as a line: a band of the image's rows
    assert kept.shape[1] == width and 1 <= kept.shape[0] <= height and np.shares_memory(kept, image)
    assert np.isfinite(normalize_line(kept, 40)).all()
