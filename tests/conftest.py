"""Shared fixtures: pages synthesised at test time, a fake recognizer, paths to the shipped model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OCRCLI_SHARED", ROOT.parent / "shared"))
MODEL = ROOT / "models" / "ocrcli-crnn-v1.safetensors"
FIXTURE_LINES = ROOT / "tests" / "fixtures" / "val_lines" / "lines.tsv"

LINES = [
    "Dear Anna, thank you for the letter",
    "we arrived on Tuesday at noon and",
    "the weather has been kind to us",
    "since then. Love to all, Tom",
]


def render_page(lines: list[str] = LINES, size: int = 36, width: int = 1200, spacing: float = 2.2,
                ruled: bool = False, margin: int = 80) -> np.ndarray:
    """A clean page (uint8 grayscale) with the given lines written in Pillow's default font."""
    font = ImageFont.load_default(size=size)
    pitch = int(size * spacing)
    height = margin * 2 + pitch * len(lines)
    im = Image.new("L", (width, height), 245)
    draw = ImageDraw.Draw(im)
    if ruled:
        for y in range(margin + int(size * 1.05), height - margin // 2, pitch):
            draw.line([(20, y), (width - 20, y)], fill=170, width=2)
    for i, text in enumerate(lines):
        draw.text((margin, margin + i * pitch), text, fill=25, font=font)
    return np.asarray(im)


def photograph(page: np.ndarray, desk: str = "dark", shadow: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The page as if photographed on a desk: seen at an angle (a perspective warp), on a dark,
    striped (wood grain), mottled (cloth) or light grey desk, optionally with a soft shadow over the
    right half of the frame. Returns the photo and the sheet's corners in it (top-left, top-right, bottom-right,
    bottom-left)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = page.shape
    frame_h, frame_w = int(h * 1.4), int(w * 1.35)
    x, y = 0.15 * w, 0.2 * h
    corners = np.float32([[x + 0.03 * w, y], [x + 1.02 * w, y + 0.04 * h], [x + 0.98 * w, y + 1.01 * h], [x - 0.02 * w, y + 0.97 * h]])
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), corners)
    sheet = cv2.warpPerspective(page.astype(np.float32), matrix, (frame_w, frame_h))
    inside = cv2.warpPerspective(np.ones_like(page, np.float32), matrix, (frame_w, frame_h))
    rows, cols = np.mgrid[0:frame_h, 0:frame_w].astype(np.float32)
    if desk == "stripes":
        surface = 95 + 30 * np.sin((cols + 0.4 * rows) / 5.0)
    elif desk == "mottled":
        blots = rng.normal(0, 1, (frame_h // 40 + 1, frame_w // 40 + 1)).astype(np.float32)
        surface = 100 + 30 * cv2.resize(blots, (frame_w, frame_h), interpolation=cv2.INTER_CUBIC)
    elif desk == "grey":
        surface = np.full((frame_h, frame_w), 150, np.float32)
    else:
        surface = np.full((frame_h, frame_w), 60, np.float32)
    surface = surface + rng.normal(0, 5, surface.shape)
    photo = inside * sheet + (1 - inside) * surface
    if shadow:
        photo *= 1 - 0.45 / (1 + np.exp(-(cols - 0.45 * frame_w) / (0.03 * frame_w)))
    return np.clip(photo, 0, 255).astype(np.uint8), corners


def bend_page(image: np.ndarray, amount: float, spine: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The page with its lines bent, as on a sheet photographed bent: column x moved down by
    ``amount`` x sin(pi x / width), or, curving into a spine on the left, x (1 - x / width) ** 3."""
    import cv2

    h, w = image.shape
    across = np.arange(w, dtype=np.float32) / w
    dy = amount * ((1 - across) ** 3 if spine else np.sin(np.pi * across))
    xs = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    ys = np.arange(h, dtype=np.float32)[:, None] - dy[None, :]
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), dy


def render_line(text: str = "Hello world", size: int = 40) -> np.ndarray:
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    im = Image.new("L", (right + 20, bottom + 20), 240)
    ImageDraw.Draw(im).text((10, 5), text, fill=20, font=font)
    return np.asarray(im)


class FakeRecognizer:
    """Stands in for the CRNN in pipeline tests: 'reads' each crop as its size, instantly."""

    device = "cpu"
    model_id = "fake"
    sha256 = "0" * 64

    def __init__(self) -> None:
        self.calls = 0
        self.fits: list[bool] = []  # each call's ``fit``

    def recognize(self, crops, decoder=None, fit=True):
        from ocrcli.recognition.engine import LineText

        self.calls += 1
        self.fits.append(fit)
        out = []
        for c in crops:
            text = f"line {c.shape[1]}x{c.shape[0]}"
            xs = tuple((i + 0.5) * c.shape[1] / len(text) for i in range(len(text)))
            out.append(LineText(text, 0.5, xs, (0.5,) * len(text)))
        return out


@pytest.fixture
def fake_recognizer() -> FakeRecognizer:
    return FakeRecognizer()


@pytest.fixture
def page_png(tmp_path: Path) -> Path:
    path = tmp_path / "page.png"
    Image.fromarray(render_page()).save(path)
    return path


@pytest.fixture
def line_pngs(tmp_path: Path) -> list[Path]:
    paths = []
    for i, text in enumerate(["Hello world", "Good morning"]):
        p = tmp_path / f"line{i}.png"
        Image.fromarray(render_line(text)).save(p)
        paths.append(p)
    return paths


def needs_shared(*parts: str) -> Path:
    """The path under ../shared, or skip the test (a user's clone has no shared data)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the project's shared data at {path} (present in CI, absent in a user's clone)")
    return path


def has_poppler() -> bool:
    from shutil import which

    return which("pdftoppm") is not None and which("pdfinfo") is not None
