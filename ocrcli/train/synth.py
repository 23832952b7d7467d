"""Synthetic English handwriting lines rendered from handwriting fonts (training only)."""

from __future__ import annotations

import csv
import random
from datetime import datetime
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont


@dataclass(frozen=True)
class FontEntry:
    path: Path
    caps_only: bool
    missing: str


def load_fonts(font_dir: Path) -> list[FontEntry]:
    """Fonts listed as usable in ``fonts.csv`` (``use`` is ``yes`` or ``caps-only``)."""
    entries = []
    with open(font_dir / "fonts.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["use"] not in ("yes", "caps-only"):
                continue
            entries.append(FontEntry(font_dir / row["file"], row["use"] == "caps-only", row.get("missing_chars") or ""))
    if not entries:
        raise ValueError(f"no usable fonts listed in {font_dir / 'fonts.csv'}")
    return entries


SPAN = (datetime(1900, 1, 1), datetime(2030, 12, 31))  # dates and times of the generated lines


class TextSource:
    """Realistic English line texts: sentences, names, addresses, dates, times, phones, amounts, lists."""

    def __init__(self, seed: int) -> None:
        from faker import Faker  # training-only dependency

        self.fake = Faker(["en_US", "en_GB"])
        self.fake.seed_instance(seed)
        # en_GB's word list is Latin lorem ipsum: take words and sentences from en_US only.
        self.words = self.fake["en_US"]
        self.rng = random.Random(seed)

    def line(self) -> str:
        f, r = self.fake, self.rng
        kind = r.random()
        if kind < 0.40:
            text = self.words.sentence(nb_words=r.randint(3, 11)).rstrip(".") + r.choice([".", ".", ",", "", "?", "!", ";", ":"])
        elif kind < 0.50:
            text = f.name() + r.choice(["", ", " + f.job()[:30], " - " + f.phone_number()])
        elif kind < 0.60:
            text = f.address().replace("\n", ", ")
        elif kind < 0.68:
            # Moments from a fixed span: Faker's date(), time() and day_of_week() draw up to the
            # present moment, so the same seed gave different texts on different days.
            moment = f.date_time_between(start_date=SPAN[0], end_date=SPAN[1])
            text = r.choice([
                moment.strftime(r.choice(["%d/%m/%Y", "%m/%d/%y", "%B %d, %Y", "%d %b %Y", "%A %d %B"])),
                moment.strftime(r.choice(["%H:%M", "%I:%M %p", "%H.%M"])),
                moment.strftime("%A %H:%M"),
            ]) + r.choice(["", " " + self.words.sentence(nb_words=r.randint(2, 5)).rstrip(".")])
        elif kind < 0.76:
            amount = f"{r.choice(['$', '£', '€', ''])}{r.randint(0, 9999)}.{r.randint(0, 99):02d}"
            text = r.choice([f"{self.words.word().capitalize()} {amount}", f"Total: {amount}", f"{r.randint(1, 12)} x {self.words.word()} @ {amount}"])
        elif kind < 0.84:
            text = f"{r.choice(['-', '*', '1.', '2)', 'a)', '-'])} {self.words.sentence(nb_words=r.randint(1, 5)).rstrip('.')}"
        elif kind < 0.90:
            text = r.choice([f"Tel. {f.phone_number()}", f.email(), f"Ref. {f.bothify('??-####').upper()}",
                             f"{f.company()} ({f.city()})"])
        else:
            words = [self.words.word() for _ in range(r.randint(2, 8))]
            abbrev = ["Mr.", "Mrs.", "Dr.", "St.", "etc.", "e.g.", "i.e.", "approx.", "No.", "Jan.", "Sept."]
            words.insert(r.randint(0, len(words)), r.choice(abbrev))
            text = " ".join(words)
        return " ".join(text.split())[:80]


class SynthRenderer:
    """Renders a text with a random font, size, slant, stroke, spacing, ink and paper."""

    def __init__(self, fonts: list[FontEntry], seed: int) -> None:
        self.fonts = fonts
        self.rng = np.random.default_rng(seed)
        self._cache: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}
        self._lacking: dict[Path, set[str]] = {}
        self._alphabet = "".join(chr(c) for c in range(33, 127)) + "£€éèàçü"

    def _drawable(self, entry: FontEntry, text: str) -> str:
        """Drop characters the font lacks (they would render as the .notdef box)."""
        lacking = self._lacking.get(entry.path)
        if lacking is None:
            font = self._font(entry, 40)
            notdef = bytes(font.getmask("\ue000"))
            lacking = {ch for ch in self._alphabet if not ch.isspace() and bytes(font.getmask(ch)) == notdef}
            lacking |= set(entry.missing)
            self._lacking[entry.path] = lacking
        return "".join(ch for ch in text if ch not in lacking)

    def _font(self, entry: FontEntry, size: int) -> ImageFont.FreeTypeFont:
        key = (entry.path, size)
        if key not in self._cache:
            self._cache[key] = ImageFont.truetype(str(entry.path), size)
        return self._cache[key]

    def render(self, text: str) -> tuple[np.ndarray, str]:
        """Return (uint8 grayscale crop, label). The label may be upper-cased for caps-only fonts."""
        rng = self.rng
        entry = self.fonts[int(rng.integers(len(self.fonts)))]
        if entry.caps_only:
            text = text.upper()
        text = " ".join(self._drawable(entry, text).split()) or "a"
        size = int(rng.integers(40, 72))
        font = self._font(entry, size)
        spacing = rng.uniform(-0.04, 0.12) * size if rng.random() < 0.3 else 0.0
        left, top, right, bottom = font.getbbox(text)
        width = int(right - left + spacing * len(text) + size)
        height = int(size * 2.2)
        canvas = Image.new("L", (max(width, 8), height), 0)
        draw = ImageDraw.Draw(canvas)
        y = size * 0.5
        if spacing:
            x = size * 0.5
            for ch in text:
                draw.text((x, y), ch, fill=255, font=font)
                x += font.getlength(ch) + spacing
        else:
            draw.text((size * 0.5, y), text, fill=255, font=font)
        ink = np.asarray(canvas)
        ink = self._wobble(ink)
        ys, xs = np.nonzero(ink > 40)
        if len(xs) == 0:
            return np.full((size, size), 235, np.uint8), ""
        ink = ink[max(ys.min() - 2, 0): ys.max() + 3, max(xs.min() - 2, 0): xs.max() + 3]
        return self._compose(ink), text

    def _wobble(self, ink: np.ndarray) -> np.ndarray:
        """Baseline wobble (vertical sine displacement) and stroke width change."""
        rng = self.rng
        h, w = ink.shape
        if rng.random() < 0.6:
            amp = rng.uniform(0.5, 0.06 * h)
            period = rng.uniform(150, 600)
            xs = np.arange(w, dtype=np.float32)
            shift = (amp * np.sin(2 * np.pi * xs / period + rng.uniform(0, 6.3))).astype(np.float32)
            mapx = np.tile(xs, (h, 1))
            mapy = np.arange(h, dtype=np.float32)[:, None] + shift[None, :]
            ink = cv2.remap(ink, mapx, mapy, cv2.INTER_LINEAR, borderValue=0)
        r = rng.random()
        if r < 0.25:
            ink = cv2.dilate(ink, np.ones((2, 2), np.uint8))
        elif r < 0.35:
            ink = cv2.erode(ink, np.ones((2, 2), np.uint8))
        return ink

    def _compose(self, ink: np.ndarray) -> np.ndarray:
        """Put ink on paper: paper tone and texture, ink tone, ruled lines, neighbour fragments."""
        rng = self.rng
        h, w = ink.shape
        paper = rng.uniform(170, 250)
        texture = cv2.GaussianBlur(rng.normal(0, rng.uniform(2, 10), (h, w)).astype(np.float32), (0, 0), rng.uniform(1, 4))
        page = np.full((h, w), paper, np.float32) + texture
        if rng.random() < 0.25:  # ruled paper line near the baseline or top
            y = int(rng.uniform(0.6, 0.95) * h) if rng.random() < 0.7 else int(rng.uniform(0.0, 0.2) * h)
            page[max(y, 0): y + int(rng.integers(1, 3)), :] -= rng.uniform(25, 80)
        alpha = ink.astype(np.float32) / 255.0
        if rng.random() < 0.2:  # strokes of the lines above/below cut into the crop
            frag = np.zeros_like(alpha)
            for _ in range(int(rng.integers(1, 5))):
                x = int(rng.integers(0, w))
                top = rng.random() < 0.5
                y0, y1 = (0, int(h * rng.uniform(0.05, 0.2))) if top else (int(h * rng.uniform(0.8, 0.95)), h)
                cv2.line(frag, (x, y0), (x + int(rng.integers(-8, 8)), y1), 1.0, int(rng.integers(1, 4)))
            alpha = np.maximum(alpha, frag)
        ink_tone = rng.uniform(0, min(120, paper - 50))
        out = page * (1 - alpha) + ink_tone * alpha
        return np.clip(out, 0, 255).astype(np.uint8)


class SynthPool:
    """Renders batches of synthetic lines as training samples at the model's input height."""

    def __init__(self, fonts_dir: Path, charset, height: int, size: int, seed: int) -> None:
        self.text = TextSource(seed)
        self.renderer = SynthRenderer(load_fonts(fonts_dir), seed)
        self.charset = charset
        self.height = height

    def render(self, n: int) -> list:
        from ocrcli.train.data import LineSample

        out = []
        while len(out) < n:
            image, text = self.renderer.render(self.text.line())
            if not text or self.charset.unknown(text):
                continue
            h, w = image.shape
            image = cv2.resize(image, (max(8, round(w * self.height / h)), self.height), interpolation=cv2.INTER_AREA)
            out.append(LineSample(image, text, "synth"))
        return out
