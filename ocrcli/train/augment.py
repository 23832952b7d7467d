"""Random distortions of training lines (training only; inference is deterministic)."""

from __future__ import annotations

import cv2
import numpy as np


def _paper(gray: np.ndarray) -> int:
    return int(np.percentile(gray, 90))


def affine(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slant, small rotation, horizontal scale, and margins like a segmenter's crops have."""
    h, w = gray.shape
    paper = _paper(gray)
    shear = rng.uniform(-0.3, 0.3)
    angle = np.deg2rad(rng.uniform(-2.0, 2.0))
    sx = rng.uniform(0.8, 1.2)
    sy = rng.uniform(0.85, 1.05)
    c, s = np.cos(angle), np.sin(angle)
    lin = np.diag([sx, sy]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.array([[c, -s], [s, c]])
    m = np.hstack([lin, np.zeros((2, 1))]).astype(np.float32)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float32) @ m.T
    x0, y0 = corners.min(0)
    x1, y1 = corners.max(0)
    pad_top, pad_bottom = rng.uniform(0, 0.15, 2) * h
    pad_x = rng.uniform(0, 0.5) * h
    m[0, 2] = -x0 + pad_x
    m[1, 2] = -y0 + pad_top
    out_w = int(np.ceil(x1 - x0 + 2 * pad_x))
    out_h = int(np.ceil(y1 - y0 + pad_top + pad_bottom))
    return cv2.warpAffine(gray, m, (max(out_w, 8), max(out_h, 8)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=paper)


def elastic(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacement field: the wobble of a hand that is not a font."""
    h, w = gray.shape
    alpha = rng.uniform(0.8, 2.0) * h / 40
    grid = max(4, h // 2)
    dx = cv2.resize(rng.normal(0, 1, (h // grid + 2, w // grid + 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(rng.normal(0, 1, (h // grid + 2, w // grid + 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(gray, xs + alpha * dx, ys + alpha * dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def stroke(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thinner or thicker pen: grayscale erosion (thicker ink) or dilation (thinner), by one pixel.

    At the model's 40 px line height a 3x3 kernel merges letters into blobs, so only 2x2 is used.
    """
    k = np.ones((2, 2), np.uint8)
    return cv2.erode(gray, k) if rng.random() < 0.5 else cv2.dilate(gray, k)


def photometric(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast, brightness, a shadow gradient, blur, noise and JPEG artefacts.

    Kept mild: the line must stay legible after the recognizer's contrast stretch, or the label
    becomes noise (strong contrast loss plus noise turned faint lines into static).
    """
    img = gray.astype(np.float32)
    if rng.random() < 0.5:
        img = (img - 128) * rng.uniform(0.75, 1.2) + 128 + rng.uniform(-25, 20)
    if rng.random() < 0.25:
        h, w = img.shape
        ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :]
        if rng.random() < 0.5:
            ramp = ramp[:, ::-1]
        img = img - ramp * rng.uniform(15, 50)
    if rng.random() < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.7))
    if rng.random() < 0.3:
        img = img + rng.normal(0, rng.uniform(2, 7), img.shape)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 85))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def bilevel(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A black-and-white (1-bit) scan of the line: Otsu's threshold, moved a little either way.

    Half the time the line is thresholded at twice its size and shrunk back, as a page scanned
    1-bit at a high resolution and read at a lower one has soft, not staircase, edges. Faint
    strokes that fall on the paper's side are lost, as they are in such scans.
    """
    scale = 2 if rng.random() < 0.5 else 1
    img = gray if scale == 1 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    otsu, _ = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    level = float(np.clip(otsu + rng.uniform(-20.0, 15.0), 1, 254))
    out = np.where(img > level, 255, 0).astype(np.uint8)
    if scale != 1:
        out = cv2.resize(out, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_AREA)
    return out


def specks(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dust and toner specks, as a photocopy or a dirty scanner glass leaves them: 0.2-2% of the
    pixels get a dark dot, a quarter of the dots 2 x 2 px, each as dark as the line's ink or a
    little lighter.

    Without this, all val lines with 1% of such specks read at 36.8% CER against 16.2% clean
    (shipped model of session 29, beam).
    """
    out = gray.copy()
    h, w = out.shape
    n = int(rng.uniform(0.002, 0.02) * h * w)
    if n == 0 or h < 2 or w < 2:
        return out
    ink = float(np.percentile(gray, 2))
    ys, xs = rng.integers(0, h - 1, n), rng.integers(0, w - 1, n)
    values = rng.uniform(ink, ink + 0.5 * max(0.0, _paper(gray) - ink), n).astype(np.uint8)
    out[ys, xs] = values
    big = rng.random(n) < 0.25
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        out[ys[big] + dy, xs[big] + dx] = values[big]
    return out


def grain(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor grain, as a photo taken in dim light has it: Gaussian noise of 8-20% of the line's
    contrast (paper minus ink; the photometric noise is 2-7 grey levels), half the time blurred
    0.5-1 px first, as a camera's demosaicing and JPEG leave it.

    Without this, 600 val lines under noise of 20 grey levels read at 27.2% CER against 20.5%
    clean (shipped model of session 31, greedy).
    """
    h, w = gray.shape
    ink = float(np.percentile(gray, 2))
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    if rng.random() < 0.5:
        noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 1.0))
        noise /= max(float(noise.std()), 1e-6)
    sigma = rng.uniform(0.08, 0.2) * max(0.0, _paper(gray) - ink)
    return np.clip(gray + sigma * noise, 0, 255).astype(np.uint8)


def augment(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random training view of a line crop (uint8, dark ink on light paper)."""
    if rng.random() < 0.8:
        gray = affine(gray, rng)
    if rng.random() < 0.25:
        gray = elastic(gray, rng)
    if rng.random() < 0.2:
        gray = stroke(gray, rng)
    gray = photometric(gray, rng)
    if rng.random() < 0.1:
        gray = grain(gray, rng)
    if rng.random() < 0.2:
        gray = specks(gray, rng)
    # 1-bit scans: without this a line thresholded to black and white read 19.8% CER against
    # 16.3% in gray (the 350 fixture lines, shipped model of session 25).
    if rng.random() < 0.25:
        gray = bilevel(gray, rng)
    return gray
