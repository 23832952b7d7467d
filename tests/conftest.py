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
