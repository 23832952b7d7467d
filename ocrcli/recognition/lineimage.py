"""Turn a grayscale line crop into the network's input: ink high, contrast stretched, fixed height.

The same function prepares training lines and inference crops, so both see identical inputs. When
a line is read (inference, and validation during training) its rows are first chosen by
``fit_rows``, which cuts wide margins; training reads the same rows with ``ocr train --fit-rows``
(whole lines by default).
"""

from __future__ import annotations

import cv2
import numpy as np

from ocrcli.preprocess import percentiles_u8

# Stretch between these percentiles of the crop: the low one is ink, the high one is paper.
_INK_PCT = 2.0
_PAPER_PCT = 90.0
# A crop whose ink and paper differ by less than this is (nearly) blank: don't amplify its noise.
_MIN_CONTRAST = 40.0

# How much of its crop a line's body fills when it is read (``fit_rows``). The body is the band of
# rows between the 25th and 75th percentile of the line's ink (about the x-height). Measured with the
# shipped model on the 3,191 val lines (session 20): it reads best when the body is about 0.22 of the
# input height. A crop with more margin than that is cut to it, by at most an eighth of its height,
# so that ascenders and descenders survive. Blank margins beyond the outermost ink (its 1st and
# 99th percentile rows) are first cut to one body height (the training lines' median margins: 0.75
# of a body above, 0.6 below), so that a crop with a lot of paper round it reads almost as well
# as a tight one.
_BODY_SHARE = 0.22
_MAX_BODY_CUT = 0.125
_MARGIN_BODIES = 1.0


def fit_rows(gray: np.ndarray) -> np.ndarray:
    """The rows of a grayscale line crop that the recognizer reads: blank margins wider than one
    body height trimmed, then the crop cut evenly above and below towards a body share of 0.22,
    by at most an eighth of its height. Returns a view of ``gray``; a blank crop, or one that is not
    2-D uint8 (``normalize_line`` says what is wrong with it), is returned whole.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8 or gray.shape[0] < 8 or gray.size == 0:
        return gray
    h = gray.shape[0]
    lo, hi = percentiles_u8(gray, (_INK_PCT, _PAPER_PCT))
    ink = np.clip((hi - gray.astype(np.float32)) / max(hi - lo, _MIN_CONTRAST), 0.0, 1.0).sum(axis=1)
    total = float(ink.sum())
    if total <= 0:
        return gray
    mass = np.cumsum(ink) / total
    first, q25, q75, last = (int(v) for v in np.searchsorted(mass, (0.01, 0.25, 0.75, 0.99)))
    body = q75 - q25 + 1
    top = max(0, first - int(_MARGIN_BODIES * body))
    bottom = min(h, last + 1 + int(_MARGIN_BODIES * body))
    kept = bottom - top
    cut = int(round(min(kept - body / _BODY_SHARE, _MAX_BODY_CUT * kept)))
    if cut >= 2:
        top += cut // 2
        kept -= cut
    return gray[top:top + kept]


def normalize_line(gray: np.ndarray, height: int, min_width: int = 16, max_width: int | None = None) -> np.ndarray:
    """Return a float32 (height, W) array in [0, 1] with ink near 1 and paper near 0.

    Args:
        gray: uint8 (H, W) crop, dark ink on light paper.
        height: the network's input height.
        min_width: the narrowest output width.
        max_width: the widest output width (a longer line is squeezed); None for no limit.
    """
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale crop, got shape {gray.shape}")
    h, w = gray.shape
    new_w = max(min_width, round(w * height / max(h, 1)))
    if max_width is not None:
        new_w = min(new_w, max_width)
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (new_w, height), interpolation=interp).astype(np.float32)
    lo, hi = np.percentile(resized, (_INK_PCT, _PAPER_PCT))
    span = max(float(hi - lo), _MIN_CONTRAST)
    return np.clip((hi - resized) / span, 0.0, 1.0)
