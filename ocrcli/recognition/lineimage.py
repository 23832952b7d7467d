"""Turn a grayscale line crop into the network's input: ink high, contrast stretched, fixed height.

The same function prepares training lines and inference crops, so both see identical inputs.
"""

from __future__ import annotations

import cv2
import numpy as np

# Stretch between these percentiles of the crop: the low one is ink, the high one is paper.
_INK_PCT = 2.0
_PAPER_PCT = 90.0
# A crop whose ink and paper differ by less than this is (nearly) blank: don't amplify its noise.
_MIN_CONTRAST = 40.0


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
