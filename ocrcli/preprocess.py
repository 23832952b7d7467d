"""Preprocessing stages: Page -> Page, each small, testable alone, and recorded in ``page.steps``.

The recognizer reads grayscale crops (it was trained on grayscale lines), so ``binarize`` keeps a
lighting-flattened grayscale image for recognition and adds a binary ink mask for segmentation.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

from ocrcli.config import PreprocessConfig
from ocrcli.documents import ColumnShift, Page

PAPER = 255
# Whole-page float arrays are 4-8 bytes a pixel (44 MB each for a 200-dpi A4 page), so work that
# needs them goes in bands of this many rows: the page path's peak memory stays near the uint8 images.
BAND_ROWS = 256


# cv2.calcHist counts in float32, exact up to 2**24: a histogram is summed from bands of fewer pixels.
HIST_BAND_PIXELS = 1 << 24


def histogram_u8(image: np.ndarray) -> np.ndarray:
    """Pixel count of each of the 256 values of a 2-D uint8 image (int64). cv2.calcHist is 6x as
    fast as np.bincount, which first copies the image into 8-byte integers."""
    h, w = image.shape
    if w > HIST_BAND_PIXELS:
        return np.bincount(image.ravel(), minlength=256)
    rows = HIST_BAND_PIXELS // max(w, 1)
    counts = np.zeros(256, np.int64)
    for y in range(0, h, rows):
        counts += cv2.calcHist([image[y:y + rows]], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    return counts


def percentile_u8(image: np.ndarray, q: float) -> float:
    """``np.percentile(image, q)`` of a uint8 image (linear interpolation, the same value) from its
    histogram, without the sorted float64 copy of the whole image."""
    return percentiles_u8(image, (q,))[0]


def percentiles_u8(image: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """``percentile_u8`` for each of ``qs``, from one histogram."""
    counts = np.cumsum(histogram_u8(image))
    values = []
    for q in qs:
        rank = q / 100 * (image.size - 1)
        below = int(rank)
        low = int(np.searchsorted(counts, below, side="right"))
        high = int(np.searchsorted(counts, min(below + 1, image.size - 1), side="right"))
        values.append(float(low + (high - low) * (rank - below)))
    return tuple(values)


def flatten_illumination(gray: np.ndarray) -> np.ndarray:
    """Divide by a smooth paper-brightness estimate so shadows and gradients become white paper."""
    h, w = gray.shape
    scale = max(1, min(h, w) // 300)
    small = cv2.resize(gray, (max(1, w // scale), max(1, h // scale)), interpolation=cv2.INTER_AREA) if scale > 1 else gray
    k = max(3, (min(small.shape) // 40) | 1)
    background = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    background = cv2.medianBlur(background, min(k * 2 + 1, 31))
    if scale > 1:
        background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.empty_like(gray)
    for y in range(0, h, BAND_ROWS):
        rows = slice(y, y + BAND_ROWS)
        band = gray[rows].astype(np.float32) * (255.0 / np.maximum(background[rows].astype(np.float32), 1.0))
        out[rows] = np.clip(band, 0, 255)
    return out


def ink_mask(gray: np.ndarray, min_contrast: int = 30, noise: float = 0.0) -> np.ndarray:
    """Otsu threshold with a contrast floor, so a blank page gives an empty mask, not amplified noise.
    Ink is darker than the threshold. Otsu's threshold is the darker class's highest value, which on
    a black-and-white scan (ink and paper two values only) is the ink's own value: the darkest value
    is always ink when the contrast floor allows it. ``noise``: the grey levels' noise (a standard
    deviation) on a grainy page; ink is then also at least GRAIN_CONTRAST of it darker than the
    paper's median, which its grain is not."""
    if gray.size == 0:
        return np.zeros_like(gray)
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    median, paper = percentiles_u8(gray, (50, 90))
    threshold = min(max(threshold, float(gray.min()) + 1), paper - min_contrast)
    if noise:
        threshold = min(threshold, median - GRAIN_CONTRAST * noise)
    return np.where(gray < threshold, np.uint8(255), np.uint8(0))


# Sensor grain (a photo taken in dim light, a noisy scanner): the grain of an image is the median
# absolute difference between its grey levels and their 3x3 median, measured on GRAIN_ROWS-row bands
# spread down it (about a million pixels), before its lighting is flattened. Gaussian noise of
# standard deviation s has grain 0.6 s, and flattening brightens it up to 1.2x (GRAIN_SIGMA: s is
# at most 2 x grain). The 89 validation scans and 134 photographed, bent and speckled pages made of
# them have grain 0-2; grain of s 20 and more on a blank sheet passed for rows of letters (a 5 MP
# sheet read as 32-125 lines of invented text in 35-146 s). From GRAINY up (s about 7), the
# flattened image is blurred (Gaussian, GRAIN_BLUR px, which leaves GRAIN_LEFT of the noise) before
# it is thresholded, and ink is at least GRAIN_CONTRAST times the noise left darker than the paper.
GRAINY = 4
GRAIN_ROWS = 32
GRAIN_SIGMA = 2.0
GRAIN_BLUR = 1.5
GRAIN_LEFT = 0.189
GRAIN_CONTRAST = 4.0


def grain(gray: np.ndarray) -> int:
    """The image's grain (see GRAINY), in grey levels."""
    h, w = gray.shape
    if gray.size == 0:
        return 0
    bands = max(1, min(h // GRAIN_ROWS, 1_000_000 // max(1, GRAIN_ROWS * w)))
    starts = np.linspace(0, max(0, h - GRAIN_ROWS), bands).astype(int)
    sample = np.concatenate([gray[y:y + GRAIN_ROWS] for y in starts])
    counts = np.cumsum(histogram_u8(cv2.absdiff(sample, cv2.medianBlur(sample, 3))))
    return int(np.searchsorted(counts, counts[-1] / 2))


# A speckled page (dust on a scanner's glass, a photocopy's toner, a fax): its ink mask has at least
# SPECKLED_PER_MP components of 1-2 px per million pixels. The 89 validation scans have 2-1,347
# (median 78), the 74 photos of them 0-1,275; 1% of a page's pixels turned into dark dots gives
# 5,900-7,800. There, the mask's components of up to SPECK_AREA px are painted paper-white in the
# image and the image is thresholded again: left in, the specks passed for letters when the page
# was enlarged (a page of small writing read as 1,300 lines of specks), joined lines and were read.
SPECKLED_PER_MP = 2500
SPECK_AREA = 4


def despeckle(image: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(image, ink, specks removed): the image with a speckled page's specks painted paper-white,
    and its new mask; the same arrays and 0 when the page is not speckled."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if (areas <= 2).sum() < SPECKLED_PER_MP * ink.size / 1e6:
        return image, ink, 0
    speck = np.zeros(n, bool)
    speck[1:] = areas <= SPECK_AREA
    image = image.copy()
    image[speck[labels]] = percentile_u8(image, 90)
    return image, ink_mask(image), int(speck.sum())


def page_grain(page: Page) -> int:
    """The grain its binarize step measured on a grainy page; 0 on any other page."""
    return next((step["grain"] for step in page.steps if step.get("step") == "binarize" and "grain" in step), 0)


def grainy_mask(image: np.ndarray, noisy: int, scale: float = 1.0) -> np.ndarray:
    """The ink mask of a grainy image (grain ``noisy`` measured at ``scale`` times smaller): thresholded
    blurred, with the noise left; the image itself, which the recognizer reads, is not blurred."""
    blurred = cv2.GaussianBlur(image, (0, 0), GRAIN_BLUR * scale)
    return ink_mask(blurred, noise=GRAIN_SIGMA * GRAIN_LEFT * noisy)


def binarize(page: Page) -> Page:
    """Flatten uneven lighting (phone photos, shadows), then threshold into an ink mask (a grainy
    page's blurred, a speckled page's with its specks painted out)."""
    noisy = grain(page.image)
    flat = flatten_illumination(page.image)
    if noisy >= GRAINY:
        step = {"step": "binarize", "method": "flatten+otsu", "grain": noisy}
        return page.with_image(flat, grainy_mask(flat, noisy), step)
    flat, ink, specks = despeckle(flat, ink_mask(flat))
    step = {"step": "binarize", "method": "flatten+otsu"} | ({"specks": specks} if specks else {})
    return page.with_image(flat, ink, step)


def global_mask(page: Page) -> Page:
    """The ink mask without lighting correction (used when ``binarize`` is switched off)."""
    return page.with_image(page.image, ink_mask(page.image), None)


def last_per_thread(fn: Callable) -> Callable:
    """Remember each thread's last call of ``fn(mask, ...)``: a call with the same mask object and
    equal other arguments returns that result again. The mask is held, so the same object is the
    same page; masks are never changed in place once made. (The segmenter asks several stages for
    the same page's letter height and text ink.)"""
    local = threading.local()

    def key(args: tuple, kwargs: dict) -> tuple:
        return args, tuple(sorted(kwargs.items()))

    @functools.wraps(fn)
    def remembered(mask: np.ndarray, *args, **kwargs):
        last = getattr(local, "entry", None)
        if last is not None and last[0] is mask and last[1] == key(args, kwargs):
            return last[2]
        result = fn(mask, *args, **kwargs)
        local.entry = (mask, key(args, kwargs), result)
        return result

    def remember(mask: np.ndarray, result, *args, **kwargs) -> None:
        """Make ``result`` this thread's last result for ``fn(mask, *args, **kwargs)`` (a caller that
        derived it exactly another way)."""
        local.entry = (mask, key(args, kwargs), result)

    remembered.remember = remember
    return remembered


@last_per_thread
def text_height(ink: np.ndarray, page: bool = True) -> float | None:
    """Typical letter height: the area-weighted median height of letter-sized ink components.

    Weighting by area keeps broken fragments of thin strokes from dragging the estimate down.
    ``page``: components over a quarter of the image's height or a third of its width are not
    letters (rules, borders); off for an image of one line, whose letters are that big.
    Returns None when there is no text.
    """
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return _letter_height(stats[1:], ink.shape, page)


# Letter-sized components hold at least LETTER_INK_SHARE of the ink of the components that are not
# rules or borders (70-100% at every preprocessing stage of the 89 validation pages and of 134
# photographed and bent pages made of them); specks (dust, a noisy sensor, salt-and-pepper) hold the
# rest. Below it the mask is mostly specks, and the few clusters of them that pass for letters say
# nothing about a letter's height. Nor does a letter height under MIN_LETTER_HEIGHT px (11 px and up
# on those pages): no writing is legible that small, but clusters of specks are that size.
LETTER_INK_SHARE = 0.25
MIN_LETTER_HEIGHT = 5


def _letter_height(stats: np.ndarray, shape: tuple[int, int], page: bool = True) -> float | None:
    """text_height from the ink components' rows of connectedComponentsWithStats (background left out)."""
    heights = stats[:, cv2.CC_STAT_HEIGHT]
    widths = stats[:, cv2.CC_STAT_WIDTH]
    areas = stats[:, cv2.CC_STAT_AREA]
    small = (areas < 6) | (heights < 3)
    keep = ~small
    if page:
        keep &= (heights < shape[0] / 4) & (widths < shape[1] / 3)
    if keep.sum() < 3 or areas[keep].sum() < LETTER_INK_SHARE * areas[keep | small].sum():
        return None
    height = weighted_median(heights[keep], areas[keep])
    return height if height >= MIN_LETTER_HEIGHT else None


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the weights of the smaller values reach half of all the weight."""
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights, np.float64)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


# Upscaling stops at this many pixels: a page of tiny letters stays readable well below it (a
# 100-dpi A4 scan enlarged 4x is 15 MP), and noise mistaken for tiny letters (a textured desk
# around a photographed page) must not turn a 9 MP photo into a 100 MP page.
UPSCALE_MAX_PIXELS = 40_000_000


def upscale(page: Page, min_height: int) -> Page:
    """Enlarge low-resolution pages whose letters are smaller than the segmenter and model need."""
    height = text_height(page.ink) if page.ink is not None else None
    if height is None or height >= min_height:
        return page
    h, w = page.image.shape
    factor = min(4.0, min_height / height, (UPSCALE_MAX_PIXELS / (h * w)) ** 0.5)
    if factor <= 1.0:
        return page
    size = (round(w * factor), round(h * factor))
    image = cv2.resize(page.image, size, interpolation=cv2.INTER_CUBIC)
    noisy = page_grain(page)
    ink = grainy_mask(image, noisy, factor) if noisy else ink_mask(image)
    matrix = np.array([[size[0] / w, 0, 0], [0, size[1] / h, 0]], float)
    return page.with_image(image, ink, {"step": "upscale", "factor": round(factor, 3)}, matrix)


# Finding the sheet in a photo. The work is done on the page shrunk to PAPER_SIDE pixels on its longer
# side, with the writing closed away (a grey-level closing PAPER_CLOSE-th of that side wide). A
# candidate sheet is a region that fills a four-cornered outline (PAPER_FILL both ways), covers at
# least PAPER_MIN_SHARE of the photo and leaves at least PAPER_MIN_OUTSIDE of it outside. It is
# taken only if each side of the outline that is not the photo's own edge is a paper edge: a drop of
# at least PAPER_EDGE_STEP grey levels from inside to outside, at least PAPER_EDGE_SHARP of it within
# PAPER_EDGE_NEAR pixels (a shadow's edge is soft and spreads its drop wider). Measured on photos
# of sample and validation pages (warped onto dark, wooden, grey and mottled desks, some with a
# shadow; scripts/photograph_pages.py): paper edges have sharpness 0.85-2.3, the soft shadow edges
# that bounded a lit part of a page 0.33-0.36. None of the 89 validation scans is cut.
PAPER_SIDE = 512
PAPER_CLOSE = 40
PAPER_FILL = 0.9
PAPER_MIN_SHARE = 0.15
PAPER_MIN_OUTSIDE = 0.03
PAPER_EDGE_STEP = 20.0
PAPER_EDGE_SHARP = 0.6
PAPER_EDGE_NEAR = 3
PAPER_EDGE_REACH = 8
# At least two of the sheet's edges must show: one straight dark edge is as often a scanner's black
# border or a book's gutter beside a scan, which the segmenter deals with (a will among the 89
# validation pages, cut along its black left border, read 15.05 -> 18.08%: its stamp and margin
# notes, no longer joined to the border, became lines of junk).
PAPER_MIN_EDGES = 2
# The cut runs this many (work-size) pixels inside the sheet's edges: a sliver of desk left along the
# cut becomes a long streak of ink beside the writing, and can make the segmenter merge lines (a
# copiste sample page on a striped desk: 13 lines found instead of 22).
PAPER_INSET = 1.5
# A sharp edge: a closed-image morphological gradient over this many grey levels.
PAPER_EDGE_GRADIENT = 12
# A sheet's corner is where its edges end. A hard-edged shadow across a sheet is as sharp as a paper
# edge, and the lit part alone would be cut out, losing the writing in the shade; there, the sheet's
# edges run on past the lit part's corners. A side runs on when, carried on past a corner (from
# PAPER_BEYOND[0] to PAPER_BEYOND[1] of its length), it is still a paper edge along at least
# PAPER_RUNS_ON of it (a desk's blotches pass the median test by chance, not all along). The two
# sides on either side of one side (the shadow's edge) that run on are followed to their ends and
# the sheet's edge between those ends is taken instead; any other outline that runs on is refused.
# On 22 photos under hard shadows (scripts/photograph_pages.py --shadow-every 1 --shadow-edge 0.002)
# this cut 9 sheets whole and left 12 photos whole, where 14 had been cut down to their lit part.
PAPER_BEYOND = (0.03, 0.25)
PAPER_RUNS_ON = 0.8


def _bright_region(closed: np.ndarray) -> np.ndarray | None:
    """The largest region on the bright side of Otsu's threshold (paper on a darker desk)."""
    _, bright = cv2.threshold(closed, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if n < 2:
        return None
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _edge_bounded_region(closed: np.ndarray) -> np.ndarray | None:
    """The brightest large region bounded by sharp edges: a sheet partly in shadow, whose shaded part
    falls on the desk's side of any global threshold, is still one region (a shadow's edge is soft)."""
    gradient = cv2.morphologyEx(closed, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    free = np.where(gradient < PAPER_EDGE_GRADIENT, np.uint8(255), np.uint8(0))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(free, connectivity=4)
    large = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 0.1 * free.size]
    if not large:
        return None
    return labels == max(large, key=lambda i: float(np.median(closed[labels == i])))


def _outline(region: np.ndarray) -> np.ndarray | None:
    """The region's four-cornered outline (top-left, top-right, bottom-right, bottom-left) when the
    region fills it, else None."""
    mask = region.astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    boundary = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(boundary)
    perimeter = cv2.arcLength(hull, True)
    for eps in np.linspace(0.005, 0.08, 16):
        corners = cv2.approxPolyDP(hull, eps * perimeter, True)
        if len(corners) <= 4:
            break
    if len(corners) != 4:
        return None
    quad = corners.reshape(4, 2).astype(np.float32)
    inside = np.zeros_like(mask)
    cv2.fillConvexPoly(inside, np.round(quad).astype(np.int32), 1)
    common = int((inside & mask).sum())
    if common < PAPER_FILL * inside.sum() or common < PAPER_FILL * mask.sum():
        return None
    centre = quad.mean(0)
    quad = quad[np.argsort(np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0]))]  # clockwise on screen
    quad = np.roll(quad, -int(np.argmin(quad.sum(1))), 0)
    return _fit_sides(quad, boundary.reshape(-1, 2).astype(np.float32))


def _fit_sides(quad: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """The corners where straight lines fitted to each side's boundary points meet (the outline's
    own corners are hull vertices, off the true corner where the region's corner is rounded)."""
    lines = []
    for a, b in zip(quad, np.roll(quad, -1, 0)):
        along = b - a
        length = float(np.linalg.norm(along))
        if length < 8:
            return quad
        t = (boundary - a) @ along / length**2
        off = np.abs((boundary - a) @ np.array([along[1], -along[0]]) / length)
        near = boundary[(t > 0.1) & (t < 0.9) & (off <= max(2.0, 0.01 * length))]
        if len(near) < 5:
            return quad
        vx, vy, x, y = cv2.fitLine(near, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x, y]), np.array([vx, vy])))
    fitted = _meeting_points(lines)
    # Fitted corners stay near the outline's own: a poor fit leaves the outline as it was.
    return fitted if fitted is not None and np.abs(fitted - quad).max() <= 0.05 * np.ptp(quad, 0).max() else quad


def _meeting_points(lines: list) -> np.ndarray | None:
    """Where each line (point, direction) meets the next: corner i is on lines i - 1 and i."""
    corners = []
    for (p1, d1), (p2, d2) in zip(lines[-1:] + lines[:-1], lines):
        det = d1[0] * -d2[1] + d1[1] * d2[0]
        if abs(det) < 1e-6:
            return None
        s = ((p2[0] - p1[0]) * -d2[1] + (p2[1] - p1[1]) * d2[0]) / det
        corners.append(p1 + s * d1)
    return np.array(corners, np.float32)


_EDGE_OFFSETS = np.arange(-PAPER_EDGE_REACH, PAPER_EDGE_REACH + 1, dtype=np.float32)


def _edge_profiles(closed: np.ndarray, a: np.ndarray, b: np.ndarray, normal: np.ndarray,
                   ts: np.ndarray | None = None) -> tuple:
    """Profiles across the segment a-b at 24 points along its middle four fifths (or at ``ts``,
    fractions of a-b), ``normal`` pointing out: (each profile's drop from inside to outside, its
    sharpness, the offset of its steepest drop)."""
    ts = np.linspace(0.1, 0.9, 24, dtype=np.float32) if ts is None else ts.astype(np.float32)
    points = a + ts[:, None, None] * (b - a) + _EDGE_OFFSETS[None, :, None] * normal
    profiles = cv2.remap(closed.astype(np.float32), points[..., 0].astype(np.float32), points[..., 1].astype(np.float32),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    drop = profiles[:, :3].mean(1) - profiles[:, -3:].mean(1)
    drops = profiles[:, :-PAPER_EDGE_NEAR] - profiles[:, PAPER_EDGE_NEAR:]
    return drop, drops.max(1) / np.maximum(drop, 1.0), _EDGE_OFFSETS[drops.argmax(1)]


def _paper_edge(closed: np.ndarray, a: np.ndarray, b: np.ndarray, normal: np.ndarray) -> float | None:
    """How far out along ``normal`` the sheet's edge lies from the side a-b, when the side is a
    sharp drop from inside to outside (see PAPER_EDGE_*), else None."""
    drop, sharpness, steepest = _edge_profiles(closed, a, b, normal)
    if np.median(drop) < PAPER_EDGE_STEP or np.median(sharpness) < PAPER_EDGE_SHARP:
        return None
    return float(np.median(steepest)) + PAPER_EDGE_NEAR / 2


def _runs_on(closed: np.ndarray, a: np.ndarray, b: np.ndarray, normal: np.ndarray) -> bool:
    """Whether the edge a-b carries on as a paper edge past its corner b (see PAPER_BEYOND); a
    stretch that would leave the photo is shortened to stay in it."""
    h, w = closed.shape
    along = b - a
    near, far = PAPER_BEYOND
    for _ in range(4):
        end = b + far * along
        if 0 <= end[0] <= w - 1 and 0 <= end[1] <= h - 1:
            break
        far = near + (far - near) / 2
    else:
        return False
    if (far - near) * float(np.linalg.norm(along)) < 2 * PAPER_EDGE_REACH:
        return False
    drop, sharpness, _ = _edge_profiles(closed, b + near * along, b + far * along, normal)
    return float(np.mean((drop >= PAPER_EDGE_STEP) & (sharpness >= PAPER_EDGE_SHARP))) >= PAPER_RUNS_ON


def _follow(closed: np.ndarray, a: np.ndarray, b: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Where the paper edge a-b, carried on past b, ends: profiles across it every pixel, from
    PAPER_BEYOND[0] past b (at the corner a shadow's edge crosses it) to the photo's edge; the
    end is the farthest profile that is a paper edge with at least PAPER_RUNS_ON of those before
    it (a mark at the sheet's edge breaks it for a stretch)."""
    h, w = closed.shape
    along = b - a
    length = max(float(np.linalg.norm(along)), 1e-6)
    start = b + PAPER_BEYOND[0] * along
    # How far the line stays in the photo, as a multiple of a-b.
    reach = min(((top if v > 0 else 0) - p) / v if v else np.inf for p, v, top in zip(start, along, (w - 1, h - 1)))
    ts = np.arange(0.0, max(reach, 0.0), 1.0 / length)
    if len(ts) == 0:
        return start.astype(np.float32)
    drop, sharpness, _ = _edge_profiles(closed, start, start + along, normal, ts)
    passing = (drop >= PAPER_EDGE_STEP) & (sharpness >= PAPER_EDGE_SHARP)
    share = np.cumsum(passing) / np.arange(1, len(ts) + 1)
    good = np.flatnonzero(passing & (share >= PAPER_RUNS_ON))
    return (start + (ts[good[-1]] if len(good) else 0.0) * along).astype(np.float32)


def _on_border(a: np.ndarray, b: np.ndarray, w: int, h: int) -> bool:
    """Whether the side a-b lies along the photo's own edge (where the photo cut the sheet off)."""
    return any(abs(a[i] - v) <= 3 and abs(b[i] - v) <= 3 for i, v in ((0, 0), (0, w - 1), (1, 0), (1, h - 1)))


def _side(closed: np.ndarray, a: np.ndarray, b: np.ndarray, outward: np.ndarray) -> tuple | None:
    """The side a-b of an outline as ((a point on it, its direction), its normal on ``outward``'s
    side, whether it is a paper edge): a paper edge is moved onto the sheet's edge, less the
    inset; a side along the photo's own edge stays; None for any other side."""
    h, w = closed.shape
    along = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    normal = np.array([along[1], -along[0]], np.float32)
    if np.dot(normal, outward) < 0:
        normal = -normal
    if _on_border(a, b, w, h):
        return (a, along), normal, False
    edge = _paper_edge(closed, a, b, normal)
    if edge is None:
        return None
    return (a + (edge - PAPER_INSET) * normal, along), normal, True


def _running_on(closed: np.ndarray, corners: np.ndarray, normals: list) -> set[tuple[int, int]]:
    """The outline's sides that run on past a corner: (side, 0) past its second corner, (side, 1)
    past its first (side i runs from corner i to corner i + 1)."""
    running = set()
    for i, normal in enumerate(normals):
        a, b = corners[i], corners[(i + 1) % 4]
        if _runs_on(closed, a, b, normal):
            running.add((i, 0))
        if _runs_on(closed, b, a, normal):
            running.add((i, 1))
    return running


def _sheet(closed: np.ndarray, region: np.ndarray | None) -> np.ndarray | None:
    """The region's outline when it is a sheet of paper on a darker surround (see PAPER_*), each
    side moved onto the sheet's edge."""
    if region is None or region.mean() < PAPER_MIN_SHARE:
        return None
    quad = _outline(region)
    if quad is None:
        return None
    h, w = closed.shape
    inside = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(inside, np.round(quad).astype(np.int32), 1)
    if 1 - inside.mean() < PAPER_MIN_OUTSIDE:
        return None
    centre = quad.mean(0)
    sides = [_side(closed, a, b, (a + b) / 2 - centre) for a, b in zip(quad, np.roll(quad, -1, 0))]
    if any(side is None for side in sides) or sum(side[2] for side in sides) < PAPER_MIN_EDGES:
        return None
    lines, normals = [side[0] for side in sides], [side[1] for side in sides]
    corners = _meeting_points(lines)
    if corners is None:
        return None
    running = _running_on(closed, corners, normals)
    if not running:
        return corners
    # The lit part of a sheet whose far part lies in a hard shadow: the sides on either side of the
    # shadow's edge (side j) run on past its corners (and the shadow's edge may run on across the
    # desk). Follow them to where they end, and take the sheet's edge between those ends in place
    # of the shadow's; the outline so made must not run on anywhere.
    j = next((j for j in range(4) if {((j - 1) % 4, 0), ((j + 1) % 4, 1)} <= running
              <= {((j - 1) % 4, 0), ((j + 1) % 4, 1), (j, 0), (j, 1)}), None)
    if j is None:
        return None
    a = _follow(closed, corners[(j - 1) % 4], corners[j], normals[(j - 1) % 4])
    b = _follow(closed, corners[(j + 2) % 4], corners[(j + 1) % 4], normals[(j + 1) % 4])
    side = _side(closed, a, b, normals[j])
    if side is None:
        return None
    lines[j], normals[j], _ = side
    corners = _meeting_points(lines)
    return corners if corners is not None and not _running_on(closed, corners, normals) else None


def find_paper(gray: np.ndarray) -> np.ndarray | None:
    """The corners (top-left, top-right, bottom-right, bottom-left, in ``gray``'s pixels) of a sheet
    of paper photographed on a darker surface, or None when the page has no such surround (a scan)
    or its edges are not clear enough to cut along."""
    h, w = gray.shape
    if min(h, w) < 32:
        return None
    small = _thumbnail(gray, PAPER_SIDE)
    scale = np.array([small.shape[1] / w, small.shape[0] / h], np.float32)
    k = max(3, round(max(small.shape) / PAPER_CLOSE)) | 1
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    blurred = cv2.GaussianBlur(closed, (5, 5), 0)
    for region in (_bright_region(blurred), _edge_bounded_region(blurred)):
        quad = _sheet(closed, region)
        if quad is not None:
            return (quad + 0.5) / scale - 0.5
    return None


def crop_paper(page: Page) -> Page:
    """Cut a photographed sheet out of its surround (desk, hands) and square it up (perspective),
    so the desk's texture is not read as writing. Pages without a clear sheet are left as they are."""
    quad = find_paper(page.image)
    if quad is None:
        return page
    tl, tr, br, bl = quad
    w = max(1, int(round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl)))))
    h = max(1, int(round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr)))))
    target = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    image = cv2.warpPerspective(page.image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    corners = [[int(round(x)), int(round(y))] for x, y in quad]
    return page.with_image(image, None, {"step": "paper", "corners": corners}, matrix)


# A page whose darker side of Otsu's threshold covers more than this share of it may be a negative
# (light writing on a dark ground: a microfilm or photocopy negative). On the 89 validation pages
# that share is at most 0.17, on a page under a heavy shadow 0.52, on a negative 0.97. Such a page
# is also read inverted, and the recognizer decides (``pipeline.upright``).
NEGATIVE_SHARE = 0.6


def looks_negative(gray: np.ndarray) -> bool:
    """Whether most of the page is on the dark side of Otsu's threshold (paper is the larger part)."""
    if gray.size == 0:
        return False
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(histogram_u8(gray)[:int(threshold) + 1].sum()) > NEGATIVE_SHARE * gray.size


def invert(page: Page) -> Page:
    """The page in negative (dark writing on light paper for a negative scan), recorded as an
    "invert" step; its ink mask is left to be made again by ``preprocess``."""
    return page.with_image(255 - page.image, None, {"step": "invert"})


# A page may be turned a quarter when the ink's column profile is at least this share of its row
# profile's sharpness. On the 89 validation pages the ratio column/row is at most 0.77 upright and at
# least 1.30 turned by 90 degrees (the two scores swap); short pages and tables with aligned columns
# can pass it upright, so the recognizer decides (``pipeline.upright``): passing only costs a
# second reading of the page turned a quarter.
QUARTER_TURN_RATIO = 0.9


def _letter_ink(small: np.ndarray) -> np.ndarray:
    """The mask without elongated components (rules, borders, long strokes), which would mark a
    direction of their own; letters and words stay, whichever way the page is turned."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    if n <= 1:
        return small
    w, h = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    longer, shorter = np.maximum(w, h), np.maximum(np.minimum(w, h), 2)
    keep = np.r_[False, (longer <= 10 * shorter) & (longer < 0.25 * max(small.shape))]
    return np.where(keep[labels], np.uint8(255), np.uint8(0))


def _line_sharpness(mask: np.ndarray, max_degrees: float) -> float:
    """How sharply the row profile alternates between lines and gaps, at the best angle up to
    ``max_degrees`` either way (deskew's score, made scale-free: over the profile's squared mean)."""
    mean = mask.sum(dtype=np.float64) / mask.shape[0]
    if mean == 0:
        return 0.0
    return max(_profile_score(mask, a) for a in np.arange(-max_degrees, max_degrees + 0.01, 3.0)) / mean**2


def is_quarter_turned(ink: np.ndarray, max_degrees: float = 15.0) -> bool:
    """True when the text lines may run up or down the page (a scan turned by 90 or 270 degrees)."""
    small = _thumbnail(ink)
    if min(small.shape) < 3 or not small.any():
        return False
    small = _letter_ink(small)
    rows = _line_sharpness(small, max_degrees)
    columns = _line_sharpness(np.ascontiguousarray(small.T), max_degrees)
    return columns > QUARTER_TURN_RATIO * rows


def turn(page: Page, quarters: int) -> Page:
    """The page turned clockwise by ``quarters`` x 90 degrees (image and mask), recorded as an
    "orient" step so that boxes map back to the input's pixels."""
    quarters %= 4
    if quarters == 0:
        return page
    h, w = page.image.shape[:2]
    code = {1: cv2.ROTATE_90_CLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_COUNTERCLOCKWISE}[quarters]
    # Pixel edges map exactly: clockwise (x, y) -> (h - y, x); half a turn (x, y) -> (w - x, h - y).
    matrix = {1: [[0, -1, h], [1, 0, 0]], 2: [[-1, 0, w], [0, -1, h]], 3: [[0, 1, 0], [-1, 0, w]]}[quarters]
    ink = cv2.rotate(page.ink, code) if page.ink is not None else None
    return page.with_image(cv2.rotate(page.image, code), ink, {"step": "orient", "turned": 90 * quarters},
                           np.array(matrix, float))


def _thumbnail(image: np.ndarray, longest: int = 800) -> np.ndarray:
    """The mask (or page) shrunk so its longer side is at most ``longest`` pixels (profiles and the
    sheet of a photo are searched on it)."""
    h, w = image.shape
    scale = min(1.0, longest / max(h, w))
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _profile_score(ink_small: np.ndarray, angle: float, axis: int = 1) -> float:
    """How sharp the row profile (``axis`` 1; 0: the column profile) of the mask turned by ``angle``
    is: sharp row-to-row changes mean level lines (sharp column-to-column changes, upright long
    vertical strokes such as a table's column rules)."""
    h, w = ink_small.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rotated = cv2.warpAffine(ink_small, m, (w, h), flags=cv2.INTER_NEAREST)
    return float(np.var(np.diff(rotated.sum(axis=axis, dtype=np.float64))))


def estimate_skew(ink: np.ndarray, max_degrees: float) -> float:
    """Angle (degrees, counter-clockwise positive as in OpenCV) that levels the text lines."""
    small = _thumbnail(ink)
    if small.max() == 0 or min(small.shape) < 3:  # nothing to level on a blank page or a sliver
        return 0.0
    coarse = np.arange(-max_degrees, max_degrees + 0.01, 1.0)
    best = max(coarse, key=lambda a: _profile_score(small, a))
    fine = np.arange(best - 1.0, best + 1.01, 0.1)
    return float(max(fine, key=lambda a: _profile_score(small, a)))


def rotation_matrix(shape: tuple[int, int], angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """2x3 matrix rotating an image of ``shape`` about its centre onto a canvas that holds all of it."""
    h, w = shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m, (nw, nh)


def rotate(image: np.ndarray, angle: float, fill: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Rotate about the centre, enlarging the canvas so no corner is cut off."""
    m, size = rotation_matrix(image.shape[:2], angle)
    return cv2.warpAffine(image, m, size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def _leveled(page: Page, angle: float) -> Page:
    """The page turned by ``angle`` degrees (not at all under 0.2), the step recorded."""
    if abs(angle) < 0.2:
        return page.with_image(page.image, page.ink, {"step": "deskew", "angle": 0.0})
    paper = int(percentile_u8(page.image, 90))
    image = rotate(page.image, angle, paper)
    ink = rotate(page.ink, angle, 0, cv2.INTER_NEAREST)
    matrix, _ = rotation_matrix(page.image.shape[:2], angle)
    return page.with_image(image, ink, {"step": "deskew", "angle": round(angle, 2)}, matrix)


# Curved lines (a sheet photographed bent, a notebook's page curving into its spine) are
# straightened after deskew by moving each column up or down: a cubic in x across the text's
# width (Legendre terms: tilt, bow, S-curve), searched like deskew's angle for the sharpest row
# profile, on the mask shrunk to BEND_THUMB pixels, in strips of BEND_STRIP columns; each term is
# tried up to BEND_REACH of the page's longer side at the text's ends. A page is straightened only
# when that sharpens its profile by BEND_GAIN and moves some column by BEND_MIN letter heights:
# on the 89 validation scans, whose lines drift but are not bent, the best bend sharpened them by
# at most 0.13 (none is straightened); on 30 of them bowed by 2% of their height, 29 by 0.5-4.8.
# The search costs about 0.09 s a page.
BEND_THUMB = 400
BEND_FINE = 1200
BEND_STRIP = 6
BEND_REACH = 0.05
BEND_GAIN = 0.3
BEND_MIN = 0.3


class Bend(NamedTuple):
    """Column shifts ``coefs @ _legendre(u)`` (page pixels), u running from -1 to 1 across the text's
    columns, from ``centre - half`` to ``centre + half``, and constant beyond them."""

    coefs: np.ndarray
    centre: float
    half: float
    gain: float  # how much sharper the row profile is straightened (0.3: 30%)

    def shifts(self, width: int) -> np.ndarray:
        """The shift of each of the page's ``width`` columns."""
        u = np.clip((np.arange(width) - self.centre) / self.half, -1, 1)
        return (self.coefs @ _legendre(u)).astype(np.float32)

    @property
    def slope(self) -> float:
        """The tilt term: how far lines climb or fall per pixel across."""
        return float(self.coefs[0] / self.half)


def _legendre(u: np.ndarray) -> np.ndarray:
    return np.stack([u, (3 * u ** 2 - 1) / 2, (5 * u ** 3 - 3 * u) / 2])


def _sharpness(ink: np.ndarray, longest: int, centre: float, half: float, reach: float) -> Callable[[np.ndarray], np.ndarray]:
    """A function from candidate bends (N x 3 coefficients, page pixels) to the sharpness of the row
    profile (deskew's measure) of the mask shrunk to ``longest`` pixels with each strip of BEND_STRIP
    columns moved by its bend's shift, to the nearest row; shifts up to ``reach`` page pixels."""
    scale = min(1.0, longest / max(ink.shape))
    small = _thumbnail(ink, longest)
    starts = np.arange(0, small.shape[1], BEND_STRIP)
    strips = np.add.reduceat(small.astype(np.float32), starts, axis=1).T  # one row profile per strip
    middles = (np.minimum(starts + BEND_STRIP, small.shape[1]) + starts) / 2 / scale
    terms = _legendre(np.clip((middles - centre) / half, -1, 1)) * scale
    pad = int(np.ceil(reach * scale)) + 1
    padded = np.pad(strips, ((0, 0), (pad, pad)))
    rows = np.arange(small.shape[0])[None, :] + pad

    def sharpness(coefs: np.ndarray) -> np.ndarray:
        shifts = np.clip(np.rint(coefs @ terms), -pad, pad).astype(np.intp)
        profiles = padded[0][rows + shifts[:, :1]]  # every candidate's profile, a strip at a time
        for k in range(1, len(starts)):
            profiles += padded[k][rows + shifts[:, k:k + 1]]
        return np.var(np.diff(profiles, axis=1), axis=1)

    return sharpness


def _refined(sharpness: Callable, best: np.ndarray, score: float, step: np.ndarray, rounds: int) -> tuple[np.ndarray, float]:
    """The best bend among ``best`` and its neighbours ``step`` away, the step halved each round."""
    around = np.array(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij")).reshape(3, -1).T
    for _ in range(rounds):
        candidates = best + around * step
        scores = sharpness(candidates)
        if scores.max() > score:
            best, score = candidates[np.argmax(scores)], float(scores.max())
        step = step / 2
    return best, score


def estimate_bend(ink: np.ndarray, min_gain: float = 0.0) -> Bend | None:
    """The column shifts that make the text lines' row profile sharpest (None on a blank page).

    Searched on a grid on the mask shrunk to BEND_THUMB pixels and refined around the best there,
    where its gain is measured; a bend that gains ``min_gain`` is then refined to a pixel or two on
    the mask shrunk to BEND_FINE pixels (a table's rules must come out straight to be seen as rules)."""
    h, w = ink.shape
    columns = ink.sum(axis=0, dtype=np.float64)
    if columns.sum() == 0:
        return None
    share = np.cumsum(columns) / columns.sum()
    left, right = np.searchsorted(share, 0.02), np.searchsorted(share, 0.98)
    scale = min(1.0, BEND_THUMB / max(h, w))
    if (right - left) * scale < 4 * BEND_STRIP or h * scale < 8:  # too narrow, or too flat for lines to bend
        return None
    centre, half, reach = (left + right) / 2, (right - left) / 2, BEND_REACH * max(h, w)
    coarse = _sharpness(ink, BEND_THUMB, centre, half, 2 * reach)
    tilts, bows = np.linspace(-reach, reach, 9), np.linspace(-reach, reach, 11)
    grid = np.array(np.meshgrid(tilts, bows, bows, indexing="ij")).reshape(3, -1).T
    scores = coarse(grid)
    step = np.array([tilts[1] - tilts[0], bows[1] - bows[0], bows[1] - bows[0]]) / 2
    best, score = _refined(coarse, grid[np.argmax(scores)], float(scores.max()), step, 3)
    gain = score / max(float(coarse(np.zeros((1, 3)))[0]), 1e-9) - 1
    if gain >= min_gain:
        fine = _sharpness(ink, BEND_FINE, centre, half, 2 * reach)
        best, _ = _refined(fine, best, float(fine(best[None])[0]), np.full(3, 1.0 / scale), 3)
    return Bend(best, centre, half, gain)


def _bent_enough(bend: Bend | None, page: Page, min_gain: float) -> bool:
    if bend is None or bend.gain < min_gain:
        return False
    return float(np.ptp(bend.shifts(page.ink.shape[1]))) >= BEND_MIN * (text_height(page.ink) or 0.0)


def straighten(page: Page, bend: Bend) -> Page:
    """Move each column of the page by the bend's shift (image and mask), in bands of rows."""
    h, w = page.image.shape[:2]
    dy = bend.shifts(w)
    paper = int(percentile_u8(page.image, 90))
    image, ink = np.empty_like(page.image), np.empty_like(page.ink)
    xs = np.tile(np.arange(w, dtype=np.float32), (min(h, BAND_ROWS), 1))
    for top in range(0, h, BAND_ROWS):
        rows = np.arange(top, min(h, top + BAND_ROWS), dtype=np.float32)
        ys = rows[:, None] + dy[None, :]
        band_xs = xs[:len(rows)]
        image[top:top + len(rows)] = cv2.remap(page.image, band_xs, ys, cv2.INTER_LINEAR,
                                               borderMode=cv2.BORDER_CONSTANT, borderValue=paper)
        ink[top:top + len(rows)] = cv2.remap(page.ink, band_xs, ys, cv2.INTER_NEAREST,
                                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    step = {"step": "straighten", "shift": [round(float(dy.min()), 1), round(float(dy.max()), 1)]}
    return page.with_image(image, ink, step, ColumnShift(dy))


# On a bent page, deskew's angle and a bend's tilt trade off: lines bowed over part of the page
# pull deskew's angle off (its tilt is then the angle's error), while lines curving into a spine
# have a tilt of their own (moving columns keeps them upright, turning the page does not). The tilt
# is turned away, unless the page's columns (a table's rules) stand sharper, by RULES_SHARPER, at
# another angle within UPRIGHT_REACH degrees: then that angle is taken.
RULES_SHARPER = 4.0
UPRIGHT_REACH = 3.0


def deskew(page: Page, max_degrees: float, straighten_lines: bool = True) -> Page:
    """Level the text lines (skew up to ``max_degrees`` either way), and straighten curved ones."""
    if page.ink is None:
        return page
    angle = estimate_skew(page.ink, max_degrees)
    leveled = _leveled(page, angle)
    if not straighten_lines:
        return leveled
    bend = estimate_bend(leveled.ink, BEND_GAIN)
    if not _bent_enough(bend, leveled, BEND_GAIN):
        return leveled
    tilt = float(np.degrees(np.arctan(bend.slope)))
    small = _thumbnail(leveled.ink)
    turns = np.arange(-UPRIGHT_REACH, UPRIGHT_REACH + 0.01, 0.1)
    scores = [_profile_score(small, turn, axis=0) for turn in turns]
    if max(scores) > RULES_SHARPER * _profile_score(small, tilt, axis=0):
        tilt = float(turns[int(np.argmax(scores))])
    if abs(tilt) >= 0.2 and abs(angle + tilt) <= max_degrees:
        leveled = _leveled(page, angle + tilt)
        bend = estimate_bend(leveled.ink)
        if not _bent_enough(bend, leveled, 0.0):
            return leveled
    return straighten(leveled, bend)


def denoise(page: Page) -> Page:
    """Drop specks from the ink mask: components far smaller than a letter's stroke."""
    if page.ink is None:
        return page
    n, labels, stats, _ = cv2.connectedComponentsWithStats(page.ink, connectivity=8)
    height = _letter_height(stats[1:], page.ink.shape) or 10.0  # text_height(page.ink), from these components
    min_area = max(4, int((height / 6) ** 2))
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < min_area
    ink = page.ink.copy()
    ink[small[labels]] = 0
    # The kept components are the new mask's components, unchanged: the segmenter's text_height of it
    # is known without labelling the page again.
    text_height.remember(ink, _letter_height(stats[1:][~small[1:]], ink.shape))
    return page.with_image(page.image, ink, {"step": "denoise", "min_area": min_area, "removed": int(small.sum())})


def preprocess(page: Page, cfg: PreprocessConfig, on_stage: Callable[[str, Page], None] | None = None) -> Page:
    """Run the enabled stages in order: paper, binarize, upscale, deskew, denoise.

    ``on_stage(name, page)`` is called after each stage that ran (used by --save-stages).
    """
    stages: list[tuple[str, Callable[[Page], Page]]] = [("paper", crop_paper)] if cfg.paper else []
    stages.append(("binarize", binarize) if cfg.binarize else ("mask", global_mask))
    if cfg.upscale:
        stages.append(("upscale", lambda p: upscale(p, cfg.min_text_height)))
    if cfg.deskew:
        stages.append(("deskew", lambda p: deskew(p, cfg.max_deskew_degrees, cfg.straighten)))
    if cfg.denoise:
        stages.append(("denoise", denoise))
    for name, stage in stages:
        page = stage(page)
        if on_stage is not None:
            on_stage(name, page)
    return page
