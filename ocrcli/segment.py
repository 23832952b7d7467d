"""Find text lines on a preprocessed page and cut recognizer-ready crops out of it.

Method: remove ruled lines and borders from the ink mask, smear the ink horizontally so the words
of a line join into one blob, split blobs that span several lines at the valleys of their row
profile (a dense column's blob along the ridges of its ink instead), merge pieces of the same
line, and order lines top to bottom, column by column where long vertical rules divide the page or
a white gutter parts two columns of writing. Each line's crop is cut between seams, the
least-inked paths between its body and its neighbours' bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from ocrcli.documents import BBox, Line, Page
from ocrcli.preprocess import last_per_thread, percentile_u8, text_height, weighted_median


@dataclass(frozen=True)
class SegmentConfig:
    # Sizes are in line pitches (the distance between baselines), the most robust scale on a page.
    smear: float = 0.8  # horizontal smear: joins the words of a line
    merge_gap: float = 1.5  # pieces of one band closer than this are one line
    min_width: float = 0.3  # narrower lines are dropped as specks
    min_height: float = 0.12  # flatter blobs are dropped (stray strokes, rule remnants)
    # After merging, lines flatter or narrower than these many letter heights are dropped: specks
    # and smudges read as "1", "S" or '"' (page edges, register rules' remnants, stamp dots). In
    # letters, not pitches: on double-spaced pages the pitch is twice a line's height. Widths are of
    # the smeared boxes (a lone dot's box is the smear wide, 0.8 pitch, about 1.4 letters).
    line_min_height: float = 0.6
    line_min_width: float = 1.5
    pad: float = 0.25  # crop margin around a line, in letter heights
    ink_trim: float = 0.01  # share of a line's ink, at each end of its rows, left out of its crop's height
    # A reported line box is at least band_share x the page's typical line height, around its own
    # middle: see line_boxes.
    band_share: float = 0.7
    vertical_height: float = 2.5  # blobs this many pitches tall and ...
    vertical_aspect: float = 0.6  # ... narrower than this times their height are not horizontal text
    # Blobs taller than split_height pitches are looked at for two line bodies; taller than
    # cut_height, they are cut into round(height / pitch) lines whatever their valleys.
    split_height: float = 1.2
    cut_height: float = 1.6
    # A blob over ridge_height pitches tall and ridge_width wide (a dense column of writing joined
    # into one) is parted along ridges: its ink blurred along the rows (Gaussian, ridge_blur pitches
    # across and down), at each column the rows where that peaks (at least ridge_peak of its 99th
    # percentile), joined from column to column. Each ridge's box leaves out ridge_trim of its ink's
    # rows at top and bottom (stray ascenders and descenders). If any box is over ridge_max pitches
    # tall (ridges lost in large writing), the blob is cut by height instead.
    ridge_height: float = 6.0
    ridge_width: float = 6.0
    ridge_blur: tuple[float, float] = (1.5, 0.15)
    ridge_peak: float = 0.15
    ridge_trim: float = 0.03
    ridge_max: float = 1.8
    min_peak: float = 0.3  # a line body's peak in the row profile, as a share of the blob's highest
    max_valley: float = 0.5  # the valley between two bodies, as a share of the lower peak
    column_rule: float = 0.5  # vertical rules along this share of the text's height divide it into columns
    rule_gap: float = 8.0  # gaps in such a column rule up to this many pitches are closed (0: none)
    # A table header: with at least header_columns column rules, two horizontal rules at least
    # header_depth pitches apart, the lower one in the top header_share of the text, with lines
    # between them in at least header_columns columns. Lines above the lower rule are read row by
    # row, before the columns.
    header_columns: int = 3
    header_depth: float = 2.0
    header_share: float = 0.3
    # Ink running on down the page for this many pitches (its gaps under half a letter closed) is
    # not part of horizontal lines: page edges too ragged for the rule finder, text written up the margin.
    vertical_run: float = 2.0
    # Two columns of writing with no rule between them: a white gutter at least gutter_width
    # letters wide that no line crosses (lines as wide as most of the page, headings, may), with
    # gutter_lines lines or more side by side on each side, and each side's lines long (a median of
    # column_line letters or more, half its column's width): prose, not a form's labels and values.
    gutter_width: float = 1.0
    gutter_lines: int = 3
    column_line: float = 10.0
    # Words written between lines (segment.interlinear): ink touching no line's body (its row
    # +- insert_band letters), gathered along the row over insert_smear pitches into clusters at
    # least insert_width letters wide and insert_height letters tall, with insert_ink of their box
    # (a letter tall) inked; clusters on one row less than insert_join letters apart are one line.
    insert_band: float = 0.3
    insert_smear: float = 0.5
    insert_width: float = 2.5
    insert_height: float = 0.3
    insert_ink: float = 0.08
    insert_join: float = 6.0


def vertical_rules(ink: np.ndarray, letter: float) -> np.ndarray:
    """Long straight vertical strokes: table rules, margins, borders."""
    length = int(max(40, 10 * letter))
    return cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length)))


def horizontal_rules(ink: np.ndarray, letter: float) -> np.ndarray:
    """Long straight horizontal strokes: ruled lines, table rules, borders."""
    length = int(max(40, 10 * letter))
    return cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))


def remove_rules(ink: np.ndarray, letter: float, vertical: np.ndarray | None = None,
                 horizontal: np.ndarray | None = None) -> np.ndarray:
    """Ink without long straight horizontal and vertical strokes (ruled lines, table rules, borders)."""
    horizontal = horizontal_rules(ink, letter) if horizontal is None else horizontal
    vertical = vertical_rules(ink, letter) if vertical is None else vertical
    rules = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    return cv2.bitwise_and(ink, cv2.bitwise_not(rules))


def vertical_runs(clean: np.ndarray, letter: float, length: float) -> np.ndarray:
    """Ink of long vertical runs: the columns where the ink, gaps under half a letter closed, runs on
    for ``length`` pixels, where they are at least 30% of a letter-wide window, and the ink within a
    letter of them. Ragged page edges and scanner borders (which the straight-rule finder misses)
    and notes written up the margin; a single long descender or bracket is too thin to count."""
    closed = cv2.morphologyEx(clean, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, int(letter / 2)))))
    runs = cv2.morphologyEx(closed, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, int(length)))))
    k = max(3, int(letter) | 1)
    dense = (cv2.blur((runs > 0).astype(np.float32), (k, 1)) > 0.3).astype(np.uint8) * 255
    return cv2.bitwise_and(clean, cv2.dilate(dense, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))))


def remove_border_blobs(ink: np.ndarray) -> np.ndarray:
    """Ink without large components touching the image edge: scanner borders and page-edge shadows."""
    h, w = ink.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return ink
    x, y, bw, bh = (stats[:, i] for i in range(4))
    touches = (x == 0) | (y == 0) | (x + bw >= w) | (y + bh >= h)
    large = (bh > 0.15 * h) | (bw > 0.5 * w)
    drop = touches & large
    drop[0] = False
    if not drop.any():
        return ink
    out = ink.copy()
    out[drop[labels]] = 0
    return out


def line_pitch(ink: np.ndarray, letter: float) -> float:
    """Typical distance between baselines, from the autocorrelation of the row profile.

    The first strong peak is taken, not the highest: multiples of the pitch correlate almost as
    well, and picking twice the pitch would leave pairs of lines unsplit.
    """
    profile = ink.sum(axis=1, dtype=np.float64)
    profile -= profile.mean()
    hi = int(min(8 * letter, len(profile) // 2))
    if hi < 4 or not profile.any():
        return 3.0 * letter
    corr = np.array([np.dot(profile[:-lag], profile[lag:]) for lag in range(1, hi)])
    # Skip the central lobe (lags where the profile still overlaps itself) up to its first trough.
    start = 1
    while start < len(corr) - 1 and corr[start] <= corr[start - 1]:
        start += 1
    if start >= len(corr) - 1:
        return 3.0 * letter
    # Lines are at least a letter height apart: earlier peaks are ascender/x-height echoes.
    start = max(start, int(letter) - 1)
    peaks = [i for i in range(start, len(corr) - 1) if corr[i] >= corr[i - 1] and corr[i] >= corr[i + 1]]
    if not peaks:
        return 3.0 * letter
    best = max(corr[i] for i in peaks)
    if best <= 0:  # no repeating rows at all (a single line): fall back to the typical pitch
        return 3.0 * letter
    first = next(i for i in peaks if corr[i] >= 0.7 * best)
    return float(first + 1)


def _smooth(profile: np.ndarray, pitch: float) -> np.ndarray:
    """A row profile averaged over a quarter of a line pitch (letters' inner gaps filled)."""
    win = max(3, int(pitch / 4) | 1)
    return np.convolve(profile, np.ones(win) / win, mode="same")


def _split_rows(profile: np.ndarray, pitch: float) -> list[tuple[int, int]]:
    """Cut a tall blob's row range at the valleys of its smoothed row profile."""
    n = len(profile)
    k = int(round(n / pitch))
    if k < 2:
        return [(0, n)]
    smooth = _smooth(profile, pitch)
    cuts = []
    for j in range(1, k):
        centre = int(j * n / k)
        lo, hi = max(1, centre - int(pitch / 2)), min(n - 1, centre + int(pitch / 2))
        if hi <= lo:
            continue
        cuts.append(lo + int(np.argmin(smooth[lo:hi])))
    edges = [0] + sorted(set(cuts)) + [n]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b - a > 2]


def _split_at_valleys(profile: np.ndarray, pitch: float, min_peak: float, max_valley: float) -> list[tuple[int, int]]:
    """Cut a blob's row range between line bodies: peaks of the smoothed row profile at least
    0.6 pitch apart and ``min_peak`` of the highest, cut at the lowest row between two neighbours
    when it falls below ``max_valley`` of the lower peak (touching lines keep a clear valley)."""
    n = len(profile)
    smooth = _smooth(profile, pitch)
    top = smooth.max()
    if top <= 0:
        return [(0, n)]
    is_peak = np.r_[False, (smooth[1:-1] >= smooth[:-2]) & (smooth[1:-1] > smooth[2:]), False] & (smooth >= min_peak * top)
    kept: list[int] = []
    for i in sorted(np.nonzero(is_peak)[0], key=lambda i: -smooth[i]):
        if all(abs(i - k) >= 0.6 * pitch for k in kept):
            kept.append(int(i))
    kept.sort()
    cuts = []
    for a, b in zip(kept, kept[1:]):
        c = a + int(np.argmin(smooth[a:b]))
        if smooth[c] <= max_valley * min(smooth[a], smooth[b]):
            cuts.append(c)
    edges = [0] + cuts + [n]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b - a > 2]


def _grouped(keys: np.ndarray, count: int) -> list[np.ndarray]:
    """For each value 0 .. count - 1, the positions in ``keys`` that hold it, in order."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(count + 1))
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def ridge_boxes(mask: np.ndarray, pitch: float, cfg: SegmentConfig = SegmentConfig()) -> list[list[int]] | None:
    """Lines of a tall blob (``mask``: its ink) along the ridges of its ink blurred along the rows,
    so lines that rise, fall or bend across a wide column, or start and end at different places,
    are followed where one cut across the whole blob would slice through them. Every ink pixel goes
    to the ridge nearest it in its column; each ridge's pixels give its boxes, parted at gaps over
    ``merge_gap`` pitches. None when fewer than two ridges are found or a box is taller than
    ``ridge_max`` pitches: the blob is then better cut by height."""
    h, w = mask.shape
    across, down = cfg.ridge_blur
    blur = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=across * pitch, sigmaY=max(1.0, down * pitch))
    top = float(np.percentile(blur, 99))
    if top <= 0:
        return None
    peak = np.zeros((h, w), np.uint8)
    peak[1:-1] = (blur[1:-1] >= blur[:-2]) & (blur[1:-1] > blur[2:]) & (blur[1:-1] >= cfg.ridge_peak * top)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(peak, np.ones((3, 3), np.uint8)), connectivity=8)
    ridges = [k for k in range(1, n) if stats[k, cv2.CC_STAT_WIDTH] >= pitch]
    if len(ridges) < 2:
        return None
    # Each ridge's row at every column it spans (a pitch beyond its ends), as entries sorted by
    # column, then row: a pixel's nearest ridge in its column is the entry just above or below it.
    py, px = np.nonzero(peak)
    by_label = _grouped(labels[py, px], n)
    cols_, rows_, ridge_ = [], [], []
    for k, ridge in enumerate(ridges):
        own = by_label[ridge]
        cols, where = np.unique(px[own], return_inverse=True)
        rows = np.bincount(where, weights=py[own]) / np.bincount(where)
        span = np.arange(max(0, int(cols[0] - pitch)), min(w, int(cols[-1] + pitch) + 1))
        cols_.append(span)
        rows_.append(np.interp(span, cols, rows))
        ridge_.append(np.full(len(span), k))
    col, row, ridge = (np.concatenate(a) for a in (cols_, rows_, ridge_))
    order = np.lexsort((ridge, row, col))
    col, row, ridge = col[order], row[order], ridge[order]
    ys, xs = np.nonzero(mask)
    at = np.searchsorted(col * (h + 1.0) + row, xs * (h + 1.0) + ys)  # first entry at or below the pixel
    below, above = np.minimum(at, len(col) - 1), np.maximum(at - 1, 0)
    to_below = np.where((at < len(col)) & (col[below] == xs), row[below] - ys, np.inf)
    to_above = np.where((at > 0) & (col[above] == xs), ys - row[above], np.inf)
    # The nearer of the two; at equal distance the ridge found first, as an argmin over ridges would.
    take_above = (to_above < to_below) | ((to_above == to_below) & (ridge[above] < ridge[below]))
    spanned = np.isfinite(np.minimum(to_above, to_below))
    nearest = np.where(take_above, ridge[above], ridge[below])[spanned]
    xs, ys = xs[spanned], ys[spanned]
    boxes = []
    for own in _grouped(nearest, len(ridges)):
        if not len(own):
            continue
        kx, ky = xs[own], ys[own]
        cols = np.unique(kx)
        cuts = np.nonzero(np.diff(cols) > cfg.merge_gap * pitch)[0]
        for a, b in zip(np.r_[0, cuts + 1], np.r_[cuts, len(cols) - 1]):
            rows = ky[(kx >= cols[a]) & (kx <= cols[b])]
            y0, y1 = np.quantile(rows, [cfg.ridge_trim, 1 - cfg.ridge_trim])
            boxes.append([int(cols[a]), int(y0), int(cols[b]) + 1, int(y1) + 1])
    if not boxes or max(b[3] - b[1] for b in boxes) > cfg.ridge_max * pitch:
        return None
    return boxes


class TextInk(NamedTuple):
    """What ``text_ink`` makes of a page's ink mask."""

    clean: np.ndarray  # the ink that can be text
    rules: np.ndarray  # the vertical rules (column dividers, margins)
    horizontal: np.ndarray  # the horizontal rules (ruled lines, table rules)
    pitch: float  # the line pitch


@last_per_thread  # interlinear and place_words ask for the page's text ink again after find_lines
def text_ink(ink: np.ndarray, letter: float, cfg: SegmentConfig = SegmentConfig()) -> TextInk:
    """The ink that can be text: without scanner borders, straight rules and long vertical runs;
    with the rules taken out and the line pitch."""
    unbordered = remove_border_blobs(ink)
    rules = vertical_rules(unbordered, letter)
    horizontal = horizontal_rules(unbordered, letter)
    clean = remove_rules(unbordered, letter, rules, horizontal)
    pitch = line_pitch(clean, letter)
    if cfg.vertical_run:
        clean = cv2.bitwise_and(clean, cv2.bitwise_not(vertical_runs(clean, letter, cfg.vertical_run * pitch)))
    return TextInk(clean, rules, horizontal, pitch)


def find_lines(page: Page, cfg: SegmentConfig = SegmentConfig()) -> list[Line]:
    """Text lines of a page in reading order (boxes in the page's pixels)."""
    ink = page.ink
    if ink is None or not ink.any():
        return []
    letter = text_height(ink)
    if letter is None:
        return []
    text = text_ink(ink, letter, cfg)
    clean, rules, pitch = text.clean, text.rules, text.pitch
    smear_w = max(3, int(cfg.smear * pitch) | 1)
    smeared = cv2.dilate(clean, cv2.getStructuringElement(cv2.MORPH_RECT, (smear_w, 1)))
    # Table rules and margins are walls: the cells of a table row are separate lines, also beside
    # a stretch where a column rule fades.
    if rules.any() and cfg.rule_gap:
        rows = np.flatnonzero(clean.any(axis=1))
        rules = bridge_rules(rules, rows[-1] - rows[0] if len(rows) else 0, cfg.column_rule, cfg.rule_gap * pitch)
    barrier = cv2.dilate(rules, np.ones((1, 5), np.uint8)) if rules.any() else None
    if barrier is not None:
        smeared[barrier > 0] = 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(smeared, connectivity=8)
    boxes: list[list[int]] = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if h < cfg.min_height * pitch or w < cfg.min_width * pitch:
            continue
        if h > cfg.vertical_height * pitch and w < cfg.vertical_aspect * h:
            continue  # taller than wide and several lines high: text written up the margin, or a drawing
        if h > cfg.split_height * pitch:
            rows = (labels[y:y + h, x:x + w] == i) & (clean[y:y + h, x:x + w] > 0)
            profile = rows.sum(axis=1).astype(np.float64)
            ridged = ridge_boxes(rows, pitch, cfg) if h > cfg.ridge_height * pitch and w > cfg.ridge_width * pitch else None
            if ridged is not None:
                boxes += [[x + b[0], y + b[1], x + b[2], y + b[3]] for b in ridged]
                continue
            if h > cfg.cut_height * pitch:
                pieces = _split_rows(profile, pitch)
            else:  # two lines joined by a descender, or one line with tall loops: cut only at a clear valley
                pieces = _split_at_valleys(profile, pitch, cfg.min_peak, cfg.max_valley)
            for a, b in pieces:
                cols = np.nonzero(rows[a:b].any(axis=0))[0]
                if len(cols):
                    boxes.append([x + int(cols[0]), y + a, x + int(cols[-1]) + 1, y + b])
        else:
            boxes.append([x, y, x + w, y + h])
    boxes = _merge_same_line(boxes, pitch * cfg.merge_gap, barrier)
    # Lines are not lower than their letters: where the page's typical line is (a large heading over
    # a few lines of smaller writing outweighs them in the letter estimate), its height is the letter.
    wide = [b[3] - b[1] for b in boxes if b[2] - b[0] >= cfg.line_min_width * letter]
    small = min(letter, float(np.median(wide))) if wide else letter
    boxes = [b for b in boxes if b[2] - b[0] >= max(cfg.min_width * pitch, cfg.line_min_width * small)
             and b[3] - b[1] >= max(cfg.min_height * pitch, cfg.line_min_height * small)]
    return [Line(BBox(*b)) for b in reading_order(boxes, text, letter, cfg)]


def split_in_two(ink: np.ndarray, line: Line, line_height: float) -> tuple[Line, Line] | None:
    """The line cut in two at the emptiest row of its middle (30-70% of its height; the row profile
    of its ink averaged over a quarter of ``line_height``): where two touching lines found as one
    would part. None when either part holds no ink."""
    b = line.bbox
    rows = ink[b.y0:b.y1, b.x0:b.x1] > 0
    h = rows.shape[0]
    lo, hi = int(0.3 * h), int(0.7 * h)
    if hi <= lo:
        return None
    win = max(3, int(line_height / 4) | 1)
    smooth = np.convolve(rows.sum(axis=1).astype(np.float64), np.ones(win) / win, mode="same")
    cut = lo + int(np.argmin(smooth[lo:hi]))
    parts = []
    for a, z in ((0, cut), (cut, h)):
        cols = np.nonzero(rows[a:z].any(axis=0))[0]
        if not len(cols):
            return None
        parts.append(Line(BBox(b.x0 + int(cols[0]), b.y0 + a, b.x0 + int(cols[-1]) + 1, b.y0 + z)))
    return parts[0], parts[1]


def body_rows(ink: np.ndarray, box: BBox, letter: float) -> np.ndarray:
    """The row of a line's body at each column of its box: the peaks of its row profile in spans of
    three letters, fitted with a straight line (weighted by ink; spans over half a letter off the
    first fit left out), so a slanted line's body is followed from end to end."""
    width = box.x1 - box.x0
    win = max(3, int(letter / 2) | 1)
    span = max(8, int(3 * letter))
    xs, ys, weights = [], [], []
    for c0 in range(box.x0, box.x1, span):
        profile = (ink[box.y0:box.y1, c0:min(box.x1, c0 + span)] > 0).sum(axis=1).astype(np.float64)
        if profile.sum() < letter:
            continue
        xs.append(c0 - box.x0 + span / 2)
        ys.append(box.y0 + int(np.argmax(np.convolve(profile, np.ones(win), mode="same"))))
        weights.append(np.sqrt(profile.sum()))
    if len(xs) < 2:
        return np.full(width, float(_body_row(ink, box, letter)))
    xs, ys, weights = np.array(xs), np.array(ys, np.float64), np.array(weights)
    fit = np.polyfit(xs, ys, 1, w=weights)
    near = np.abs(np.polyval(fit, xs) - ys) <= letter / 2
    if near.sum() >= 2:
        fit = np.polyfit(xs[near], ys[near], 1, w=weights[near])
    return np.polyval(fit, np.arange(width))


def interlinear(page: Page, lines: list[Line], cfg: SegmentConfig = SegmentConfig()) -> list[Line]:
    """Words written between two lines (an insertion above a line, a correction): ink that touches
    no line's body, gathered along the row into a cluster at least ``insert_width`` letters wide
    and ``insert_height`` of a letter tall, dense enough, with a line's body above it and one
    below it. Ascenders, descenders, dots and accents touch their line's body or are too small."""
    ink = page.ink
    if ink is None or len(lines) < 2:
        return []
    letter = text_height(ink)
    if letter is None:
        return []
    text = text_ink(ink, letter, cfg)
    clean = text.clean
    n, labels = cv2.connectedComponents(clean, connectivity=8)
    body = np.zeros(clean.shape, bool)
    half = max(1, int(cfg.insert_band * letter))
    step = 8
    middles = []
    for ln in lines:
        b = ln.bbox
        rows = body_rows(clean, b, letter)
        middles.append(float(np.median(rows)))
        for c0 in range(b.x0, b.x1, step):
            r = int(rows[c0 - b.x0])
            body[max(0, r - half):r + half + 1, c0:min(b.x1, c0 + step)] = True
    touching = np.zeros(n, bool)
    touching[np.unique(labels[body])] = True
    touching[0] = True
    free = ~touching[labels] & (clean > 0)
    if not free.any():
        return []
    smear = max(3, int(cfg.insert_smear * text.pitch) | 1)
    gathered = cv2.dilate(free.astype(np.uint8) * 255, cv2.getStructuringElement(cv2.MORPH_RECT, (smear, 1)))
    m, groups, stats, _ = cv2.connectedComponentsWithStats(gathered, connectivity=8)
    found = []
    for i in range(1, m):
        x, y, w, h, _ = stats[i]
        if w < cfg.insert_width * letter or h < cfg.insert_height * letter:
            continue
        own = free[y:y + h, x:x + w] & (groups[y:y + h, x:x + w] == i)
        if own.sum() < cfg.insert_ink * w * letter:
            continue
        cols = np.nonzero(own.any(axis=0))[0]
        x0, x1 = x + int(cols[0]), x + int(cols[-1]) + 1
        over = [mid for ln, mid in zip(lines, middles) if ln.bbox.x0 < x1 and ln.bbox.x1 > x0]
        if any(mid < y for mid in over) and any(mid > y + h for mid in over):
            found.append([x0, int(y), x1, int(y + h)])
    # Clusters side by side on one row are one line (a line the segmenter took into its neighbour
    # comes back as several clusters, one per word group).
    joined = _merge_same_line(found, cfg.insert_join * letter)
    return [Line(BBox(*b)) for b in sorted(joined, key=lambda b: (b[1], b[0]))]


def place_words(page: Page, lines: list[Line], words: list[Line], cfg: SegmentConfig = SegmentConfig()) -> list[Line]:
    """``lines`` (in their order) with each of ``words`` (``interlinear``'s) after the lowest line
    above it that it overlaps across, words in one place left to right when they share a row, else
    top to bottom. In a table (column rules), where ``reading_order`` puts it among the lines."""
    if page.ink is not None and (letter := text_height(page.ink)) is not None:
        text = text_ink(page.ink, letter, cfg)
        boxes = [ln.bbox.to_list() for ln in lines + words]
        if column_rules(text.rules, boxes, cfg.column_rule):
            rank = {id(box): k for k, box in enumerate(reading_order(boxes, text, letter, cfg))}
            ranks = [rank[id(box)] for box in boxes]
            after = {id(word): max((k for k in range(len(lines)) if ranks[k] < ranks[len(lines) + i]), default=-1)
                     for i, word in enumerate(words)}
            return _after_lines(lines, words, lambda word: after[id(word)])

    def lowest_above(word: Line) -> int:
        middle = (word.bbox.y0 + word.bbox.y1) / 2
        return max((k for k, ln in enumerate(lines) if (ln.bbox.y0 + ln.bbox.y1) / 2 < middle
                    and ln.bbox.x0 < word.bbox.x1 and ln.bbox.x1 > word.bbox.x0), default=-1)

    return _after_lines(lines, words, lowest_above)


def _after_lines(lines: list[Line], words: list[Line], after) -> list[Line]:
    """``lines`` with each word after the line at index ``after(word)`` (-1: before them all)."""
    slots: dict[int, list[Line]] = {}
    for word in words:
        slots.setdefault(after(word), []).append(word)
    placed: list[Line] = []
    for k in range(-1, len(lines)):
        if k >= 0:
            placed.append(lines[k])
        group = slots.get(k, [])
        middles = [(w.bbox.y0 + w.bbox.y1) / 2 for w in group]
        one_row = group and max(middles) - min(middles) < min(w.bbox.height for w in group)
        placed += sorted(group, key=(lambda w: w.bbox.x0) if one_row else (lambda w: w.bbox.y0 + w.bbox.y1))
    return placed


def reading_order(boxes: list[list[int]], text: TextInk, letter: float, cfg: SegmentConfig = SegmentConfig()) -> list[list[int]]:
    """The boxes in reading order: top to bottom; column by column between long vertical rules
    (``text``: the page's ``text_ink``), a table's header first, row by row; without rules, two
    columns of writing parted by a white gutter one after the other."""
    columns = column_rules(text.rules, boxes, cfg.column_rule)
    header = header_rule(text.horizontal, letter, text.pitch, columns, boxes, cfg) if len(columns) >= cfg.header_columns else None
    if header is None:
        return _reading_order(boxes, columns) if columns else _column_order(boxes, letter, cfg)
    above = [b for b in boxes if b[1] + b[3] < 2 * header]
    below = [b for b in boxes if b[1] + b[3] >= 2 * header]
    return _reading_order(above) + _reading_order(below, columns)


def gutter(boxes: list[list[int]], letter: float, cfg: SegmentConfig = SegmentConfig()) -> int | None:
    """x of the middle of a white gutter between two columns of writing, or None (see
    ``SegmentConfig.gutter_width``); the widest where there are several."""
    if len(boxes) < 2 * cfg.gutter_lines:
        return None
    left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
    narrow = [b for b in boxes if b[2] - b[0] < 0.6 * (right - left)]
    covered = np.zeros(right - left, bool)
    for b in narrow:
        covered[b[0] - left:b[2] - left] = True
    change = np.diff(np.r_[0, (~covered).astype(np.int8), 0])
    best, widest = None, 0
    for a, z in zip(np.flatnonzero(change == 1), np.flatnonzero(change == -1)):  # free columns a..z-1
        if z - a < cfg.gutter_width * letter or z - a <= widest:
            continue
        sides = ([b for b in narrow if b[2] <= left + a], [b for b in narrow if b[0] >= left + z])
        if min(len(side) for side in sides) < cfg.gutter_lines:
            continue
        spans = [(min(b[1] for b in side), max(b[3] for b in side)) for side in sides]
        if min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0]) < 0.5 * min(y1 - y0 for y0, y1 in spans):
            continue  # one above the other, not side by side
        columns = ((left, left + a), (left + z, right))
        if all(np.median([b[2] - b[0] for b in side]) >= max(cfg.column_line * letter, 0.5 * (x1 - x0))
               for side, (x0, x1) in zip(sides, columns)):
            best, widest = left + (a + z) // 2, z - a
    return best


def _column_order(boxes: list[list[int]], letter: float, cfg: SegmentConfig) -> list[list[int]]:
    """Reading order of a page without column rules: where two columns of writing stand side by side
    (``gutter``), the left column, then the right; lines across the gutter (headings) are read in
    their place, between the stretches of columns above and below them."""
    x = gutter(boxes, letter, cfg)
    if x is None:
        return _reading_order(boxes)
    across = sorted((b for b in boxes if b[0] < x < b[2]), key=lambda b: b[1] + b[3])
    rest = [b for b in boxes if not b[0] < x < b[2]]
    out: list[list[int]] = []
    for k, limit in enumerate([b[1] + b[3] for b in across] + [float("inf")]):
        stretch = [b for b in rest if b[1] + b[3] < limit]
        rest = [b for b in rest if b[1] + b[3] >= limit]
        for side in ([b for b in stretch if b[0] + b[2] < 2 * x], [b for b in stretch if b[0] + b[2] >= 2 * x]):
            out += _column_order(side, letter, cfg)
        if k < len(across):
            out.append(across[k])
    return out


@last_per_thread  # reading_order and place_words ask again for the same page's rules
def _rule_groups(rules: np.ndarray) -> list[list[tuple[float, int, int]]]:
    """The pieces of the vertical rules, (x of the middle, top, height), grouped by x: the pieces
    of one rule (broken by faint ink, or drifting with a residual skew) are one group. (Shared
    with later callers: not to be changed.)"""
    pieces = sorted((x + w / 2, int(y), int(h)) for x, y, w, h, _ in _piece_stats(rules))
    slack = max(4, rules.shape[1] // 150)
    groups: list[list[tuple[float, int, int]]] = []
    for piece in pieces:
        if groups and piece[0] - groups[-1][-1][0] <= slack:
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


def _column_rule_groups(rules: np.ndarray, span: float, share: float) -> list[list[tuple[float, int, int]]]:
    """The groups of ``_rule_groups`` that divide text ``span`` pixels high into columns: their
    pieces add up to at least ``share`` of it."""
    return [g for g in _rule_groups(rules) if sum(h for _, _, h in g) >= share * span]


def column_rules(rules: np.ndarray, boxes: list[list[int]], share: float) -> list[int]:
    """x of the vertical rules that divide the text into columns: rules (table rules, ruled
    margins) running along at least ``share`` of the height the lines span. Pieces of one rule
    (broken by faint ink, or drifting with a residual skew) are added up."""
    if not boxes or not rules.any():
        return []
    span = max(b[3] for b in boxes) - min(b[1] for b in boxes)
    return [int(round(sum(x * h for x, _, h in g) / sum(h for _, _, h in g)))
            for g in _column_rule_groups(rules, span, share)]


def bridge_rules(rules: np.ndarray, span: float, share: float, max_gap: float) -> np.ndarray:
    """The vertical rules with the gaps of each column rule (see ``column_rules``; ``span``: the
    height of the text) closed where they are at most ``max_gap`` pixels: a table rule fades or
    breaks off for a few lines, and the cells on either side of the gap must not join."""
    out = rules.copy()
    for group in _column_rule_groups(rules, span, share):
        group = sorted(group, key=lambda p: p[1])
        xa, bottom = group[0][0], group[0][1] + group[0][2]  # where the rule so far ends
        for xb, yb, hb in group[1:]:
            if 0 < yb - bottom <= max_gap:
                cv2.line(out, (int(round(xa)), bottom - 1), (int(round(xb)), yb), 255, 1)
            if yb + hb > bottom:
                xa, bottom = xb, yb + hb
    return out


@last_per_thread  # header_rule is asked again for the same page's horizontal rules (place_words)
def _piece_stats(mask: np.ndarray) -> np.ndarray:
    """cv2's (x, y, w, h, area) of each 8-connected piece of ``mask`` (a page's rules)."""
    return cv2.connectedComponentsWithStats(mask, connectivity=8)[2][1:]


def header_rule(horizontal: np.ndarray, letter: float, pitch: float, columns: list[int], boxes: list[list[int]],
                cfg: SegmentConfig = SegmentConfig()) -> int | None:
    """y of the rule under a table's header, or None. A register's header (column titles, printed,
    often several lines to a column) is read across the page, and the archives' transcriptions
    list it before the columns. Horizontal rules here are pieces of ``horizontal`` (straight runs
    of ink, broken at the columns) adding up to 40% of the table's width at one height; the header lies between two of
    them at least ``header_depth`` pitches apart, in the top ``header_share`` of the text, with
    lines in at least ``header_columns`` of the columns. Ruled paper has no such gap between its
    rules; a page's edge above the table has no lines below it in several columns."""
    if not boxes:
        return None
    left, right = columns[0], columns[-1]
    pieces = sorted((y + h / 2, min(x + w, right) - max(x, left)) for x, y, w, h, _ in _piece_stats(horizontal))
    horizontals, group = [], []
    for y, w in pieces + [(float("inf"), 0)]:
        if group and y - group[-1][0] > letter / 2:
            if sum(g[1] for g in group if g[1] > 0) >= 0.4 * (right - left):
                horizontals.append(sum(g[0] for g in group) / len(group))
            group = []
        group.append((y, w))
    top, bottom = min(b[1] for b in boxes), max(b[3] for b in boxes)
    for upper, lower in zip(horizontals, horizontals[1:]):
        if lower > top + cfg.header_share * (bottom - top):
            break
        if lower - upper < cfg.header_depth * pitch:
            continue
        inside = {int(np.searchsorted(columns, (b[0] + b[2]) / 2)) for b in boxes if upper < (b[1] + b[3]) / 2 < lower}
        if len(inside) >= cfg.header_columns:
            return int(lower)
    return None


def _blocked(a: list[int], b: list[int], barrier: np.ndarray | None) -> bool:
    """True when a rule stands in the horizontal gap between two boxes, at their common rows."""
    if barrier is None:
        return False
    x0, x1 = min(a[2], b[2]), max(a[0], b[0])
    y0, y1 = max(a[1], b[1]), min(a[3], b[3])
    return x1 > x0 and y1 > y0 and bool(barrier[y0:y1, x0:x1].any())


def _merge_same_line(boxes: list[list[int]], gap: float, barrier: np.ndarray | None = None) -> list[list[int]]:
    """Join boxes that overlap vertically by more than half and sit within ``gap`` pixels of each
    other, unless a rule of ``barrier`` separates them. Left to right, each box joins the first
    line it can, until no more join. A line is looked up only among those sharing a band of rows
    with the box and reaching within ``gap`` of it (the boxes come left to right, so a line left
    behind stays behind): thousands of specks do not make it quadratic."""
    boxes = sorted(boxes, key=lambda b: b[0])
    if not boxes:
        return []
    band = max(8, int(np.median([b[3] - b[1] for b in boxes])))
    merged = True
    while merged:
        merged = False
        out: list[list[int]] = []
        bands: dict[int, list[int]] = {}  # band of rows -> indices in out of the lines on its rows
        for b in boxes:
            rows = range(b[1] // band, (b[3] - 1) // band + 1)
            first = None
            for r in rows:
                near = bands[r] = [k for k in bands.get(r, ()) if b[0] - out[k][2] < gap]
                for k in near:
                    m = out[k]
                    if first is not None and k >= first:
                        continue
                    overlap = min(m[3], b[3]) - max(m[1], b[1])
                    if (overlap > 0.5 * min(m[3] - m[1], b[3] - b[1]) and m[0] - b[2] < gap
                            and not _blocked(m, b, barrier)):
                        first = k
            if first is None:
                first = len(out)
                out.append(list(b))
            else:
                m = out[first]
                m[:] = [min(m[0], b[0]), min(m[1], b[1]), max(m[2], b[2]), max(m[3], b[3])]
                merged = True
            for r in rows:
                if first not in bands.setdefault(r, []):
                    bands[r].append(first)
        boxes = out
    return boxes


def _reading_order(boxes: list[list[int]], columns: list[int] = ()) -> list[list[int]]:
    """Column by column between the rules at x = ``columns``, left to right (registers are read
    so: the archives' transcriptions of the lectaurep tables list a column's cells before the
    next column's); in a column, top to bottom, and lines whose vertical ranges overlap left to
    right."""
    if columns:
        by_column: dict[int, list[list[int]]] = {}
        for b in boxes:
            by_column.setdefault(int(np.searchsorted(columns, (b[0] + b[2]) / 2)), []).append(b)
        return [b for k in sorted(by_column) for b in _reading_order(by_column[k])]
    boxes = sorted(boxes, key=lambda b: (b[1] + b[3]) / 2)
    rows: list[list[list[int]]] = []
    for b in boxes:
        if rows:
            last = rows[-1][-1]
            overlap = min(last[3], b[3]) - max(last[1], b[1])
            if overlap > 0.5 * min(last[3] - last[1], b[3] - b[1]):
                rows[-1].append(b)
                continue
        rows.append([b])
    return [b for row in rows for b in sorted(row, key=lambda b: b[0])]


@dataclass(frozen=True)
class LineCrop:
    """A line's grayscale crop and where it was cut from (page pixels)."""

    image: np.ndarray
    box: BBox


def _body_row(ink: np.ndarray, b: BBox, letter: float) -> int:
    """The row of a line's body: the peak of its row profile summed over half a letter."""
    profile = (ink[b.y0:b.y1, b.x0:b.x1] > 0).sum(axis=1).astype(np.float64)
    if not profile.any():
        return (b.y0 + b.y1) // 2
    win = max(3, int(letter / 2) | 1)
    return b.y0 + int(np.argmax(np.convolve(profile, np.ones(win), mode="same")))


# Seams searched together hold at most this many cells (columns x seams x rows; 8 bytes each for
# their costs): a long seam is not searched with hundreds of short ones, nor is memory unbounded.
SEAM_CELLS = 1 << 21


def _seams(energies: list[np.ndarray], step: int) -> list[np.ndarray]:
    """For each of ``energies``: the row, at each of its columns, of its least-costly
    left-to-right path that moves at most one row every ``step`` columns (ties go to the middle
    row). Paths of similar length are found together, a column of all of them at a time (a page
    has hundreds of short ones: one at a time, numpy's per-call cost was most of their time)."""
    costs = [np.add.reduceat(e, list(range(0, e.shape[1], step)), axis=1)
             + 1e-3 * np.abs(np.arange(e.shape[0]) - e.shape[0] // 2)[:, None] for e in energies]
    groups, group = [], []
    for i in sorted(range(len(costs)), key=lambda i: costs[i].shape[1]):
        if group and costs[i].shape[1] * (len(group) + 1) * max(costs[k].shape[0] for k in group + [i]) > SEAM_CELLS:
            groups.append(group)
            group = []
        group.append(i)
    if group:
        groups.append(group)
    paths: list[np.ndarray] = [np.empty(0, np.int64)] * len(costs)
    for group in groups:
        for i, path in zip(group, _cheapest_paths([costs[i] for i in group])):
            paths[i] = path
    return [np.repeat(path, step)[:e.shape[1]] for path, e in zip(paths, energies)]


def _cheapest_paths(costs: list[np.ndarray]) -> list[np.ndarray]:
    """The cheapest path through each of ``costs`` (rows x columns): the row at each column,
    moving at most one row a column."""
    n, rows_max = len(costs), max(c.shape[0] for c in costs)
    cols = np.array([c.shape[1] for c in costs])
    # cost[k, g, r]: the g-th path's cost at its column k and row r; inf past its rows or columns.
    cost = np.full((int(cols.max()), n, rows_max), np.inf)
    for g, c in enumerate(costs):
        cost[:cols[g], g, :c.shape[0]] = c.T
    moves = np.zeros(cost.shape, np.int8)
    # options[m + 1, g, r]: the cost of reaching row r from row r + m (m = -1, 0, 1) at the last column.
    options = np.full((3, n, rows_max), np.inf)
    options[1] = cost[0]
    totals = np.empty((n, rows_max))
    totals[cols == 1] = options[1][cols == 1]
    for k in range(1, cost.shape[0]):
        options[0, :, 1:], options[2, :, :-1] = options[1, :, :-1], options[1, :, 1:]
        moves[k] = np.argmin(options, axis=0) - 1
        options[1] = np.min(options, axis=0) + cost[k]
        totals[cols == k + 1] = options[1][cols == k + 1]
    found = np.zeros((n, cost.shape[0]), np.int64)
    row = np.zeros(n, np.int64)
    everyone = np.arange(n)
    for k in range(cost.shape[0] - 1, -1, -1):  # back from each path's last column
        for g in np.flatnonzero(cols == k + 1):
            row[g] = int(np.argmin(totals[g, :costs[g].shape[0]]))
        found[:, k] = row
        if k > 0:
            going = cols > k
            row[going] += moves[k, everyone[going], row[going]]
    return [found[g, :cols[g]] for g in range(n)]


def separating_seams(ink: np.ndarray, lines: list[Line], letter: float,
                     wanted: set[int] | None = None) -> list[tuple[int, int, int, np.ndarray]]:
    """Seams between lines and the lines right below them, as (upper line, lower line, first
    column, row at each column). A seam is the least-inked path between the two lines' bodies
    (ink smeared along the row over a letter's width, kept a third of a letter off each body),
    so touching ascenders and descenders are parted where they cross least ink. ``wanted``: only
    the seams that part these lines (indices) from their neighbours."""
    boxes = np.array([ln.bbox.to_list() for ln in lines], np.int64).reshape(-1, 4)
    body = np.array([_body_row(ink, ln.bbox, letter) for ln in lines], np.int64)
    margin = max(1, int(letter / 3))
    energy = None
    pairs, parts = [], []
    for i, (ax0, _, ax1, ay1) in enumerate(boxes):
        x0 = np.maximum(boxes[:, 0], ax0)
        x1 = np.minimum(boxes[:, 2], ax1)
        below = (body > body[i]) & (x1 - x0 >= 2) & (boxes[:, 1] <= ay1 + letter)
        for j in np.nonzero(below)[0]:
            # Only the next line down at these columns: no other line's body between the two.
            span = x1[j] - x0[j]
            between = below & (body < body[j]) & (np.minimum(boxes[:, 2], x1[j]) - np.maximum(boxes[:, 0], x0[j]) > span / 2)
            if between.any() or (wanted is not None and i not in wanted and j not in wanted):
                continue
            lo, hi = body[i] + margin, body[j] - margin
            if hi - lo < 2:
                lo, hi = body[i] + 1, max(body[i] + 2, body[j])
            if energy is None:
                energy = cv2.blur(ink, (max(3, int(letter) | 1), 1)).astype(np.float32)
            pairs.append((i, int(j), int(x0[j]), int(lo)))
            parts.append(energy[lo:hi, x0[j]:x1[j]])
    return [(i, j, x, lo + rows) for (i, j, x, lo), rows in zip(pairs, _seams(parts, max(1, int(letter / 4))))]


def line_box(line: Line, crop: LineCrop) -> BBox:
    """The box a found line is reported with: its own width, and the rows its crop was read from.

    The crop's rows reach the line's ascenders and descenders up to the seams that separate it
    from its neighbours, plus a margin of a quarter letter: the extent that reference line
    polygons (eScriptorium, Transkribus) give a line. The line's ink box alone is tighter; on the
    89 validation pages it matched 73.2% of the reference lines (box IoU >= 0.5, before the
    fragment filter) against 79.9% for this box, with the same lines and text: lectaurep's
    reference cells are drawn loosely around short entries, 55.3 -> 69.4%."""
    return BBox(line.bbox.x0, crop.box.y0, line.bbox.x1, crop.box.y1)


def line_boxes(lines: list[Line], crops: list[LineCrop], page_height: int, cfg: SegmentConfig = SegmentConfig()) -> list[BBox]:
    """The boxes the page's lines are reported with: ``line_box``'s, each at least ``band_share``
    of the page's typical line height (their heights' median weighted by width, as for
    ``pipeline.split_merged``), grown around its middle (within the page).

    A short entry (a number, a date, a word alone in a table cell) has a box only as tall as its
    letters, where reference polygons give every line the band of a line of writing: on the 89
    validation pages, 113 of lectaurep's 608 reference cells overlapped their found line with box
    IoU 0.2-0.5, the reference a median 1.76 times as tall (session 37). The boxes keep the smeared
    width (half a smear past the first and last strokes): narrowed to the ink's columns, lectaurep's
    recall fell from 76.0 to 71.5% (its reference cells are loose both ways). Once the lines are
    read, the page path narrows each to the span of its reading plus a margin
    (``pipeline.text_span``)."""
    boxes = [line_box(line, crop) for line, crop in zip(lines, crops)]
    if not boxes:
        return boxes
    least = cfg.band_share * weighted_median(np.array([b.height for b in boxes]), np.array([b.width for b in boxes]))
    grown = []
    for b in boxes:
        if b.height < least:
            middle = (b.y0 + b.y1) / 2
            b = BBox(b.x0, max(0, int(round(middle - least / 2))), b.x1, min(page_height, int(round(middle + least / 2))))
        grown.append(b)
    return grown


def line_crops(page: Page, lines: list[Line], cfg: SegmentConfig = SegmentConfig(),
               wanted: list[int] | None = None) -> list[LineCrop]:
    """Grayscale crops of each line (or of the lines at the indices ``wanted``, in that order), cut
    between the seams that part it from the lines above and below, everything outside them
    painted paper-coloured.

    Training lines were cut along their annotated polygons with the outside painted the paper's
    colour; cutting along seams gives the recognizer the same kind of crop, even where a
    descender touches the next line's ascender (one ink component that belongs to two lines).
    """
    if not lines or wanted == []:
        return []
    image, ink = page.image, page.ink
    letter = text_height(ink) if ink is not None else None
    letter = letter or max(8.0, float(np.median([ln.bbox.height for ln in lines])) / 2)
    pad = int(cfg.pad * letter) + 1
    h, w = image.shape
    reach = int(letter)
    # Per line and column of its crop: the seam above (-1: none) and below (h + 1: none).
    tops = [np.full(ln.bbox.x1 - ln.bbox.x0 + 2 * pad, -1, np.int64) for ln in lines]
    bottoms = [np.full(ln.bbox.x1 - ln.bbox.x0 + 2 * pad, h + 1, np.int64) for ln in lines]
    seams = separating_seams(ink, lines, letter, None if wanted is None else set(wanted)) if ink is not None else []
    for i, j, sx, rows in seams:
        for k, limits, pick in ((i, bottoms, np.minimum), (j, tops, np.maximum)):
            b = lines[k].bbox
            a0, a1 = max(sx, b.x0 - pad), min(sx + len(rows), b.x1 + pad)
            if a1 > a0:
                part = limits[k][a0 - b.x0 + pad:a1 - b.x0 + pad]
                part[:] = pick(part, rows[a0 - sx:a1 - sx])
    paper = percentile_u8(image, 90)
    crops = []
    for k in range(len(lines)) if wanted is None else wanted:
        ln, top, bottom = lines[k], tops[k], bottoms[k]
        b = ln.bbox
        # A seam lets the crop reach past the box (own strokes the box missed) by up to a letter.
        top = np.where(top < 0, b.y0 - pad, np.maximum(top, b.y0 - reach))
        bottom = np.where(bottom > h, b.y1 + pad, np.minimum(bottom, b.y1 + reach))
        x0, x1 = max(0, b.x0 - pad), min(w, b.x1 + pad)
        top, bottom = top[x0 - b.x0 + pad:x1 - b.x0 + pad], bottom[x0 - b.x0 + pad:x1 - b.x0 + pad]
        y0, y1 = max(0, int(top.min())), min(h, int(bottom.max()))
        if y1 <= y0:
            y0, y1 = max(0, b.y0 - pad), min(h, b.y1 + pad)
        inside = (np.arange(y0, y1)[:, None] >= top) & (np.arange(y0, y1)[:, None] < bottom)
        if ink is not None:
            # Keep the rows that hold all but the outermost ink_trim of the ink between the seams:
            # a stray mark keeps the text tall in the recognizer's fixed height otherwise.
            rows = ((ink[y0:y1, x0:x1] > 0) & inside).sum(axis=1).astype(np.float64)
            if rows.sum() > 0:
                share = np.cumsum(rows) / rows.sum()
                first, last = int(np.searchsorted(share, cfg.ink_trim)), int(np.searchsorted(share, 1 - cfg.ink_trim))
                lo, hi = max(0, first - pad), min(y1 - y0, last + 1 + pad)
                y0, y1, inside = y0 + lo, y0 + hi, inside[lo:hi]
        crop = image[y0:y1, x0:x1].copy()
        crop[~inside] = paper
        crops.append(LineCrop(crop, BBox(x0, y0, x1, y1)))
    return crops
