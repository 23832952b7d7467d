"""`ocr adapt`: transcript-to-line alignment and fine-tuning on a synthetic writer made at test time.

The "writer" is Pillow's font with a hand of its own (strong slant, wide letter spacing, a heavy
pen), which the shipped model reads with a few percent of errors. Pages are rendered with known
lines; the transcriptions given to `ocr adapt` are re-wrapped at another width, so their line
breaks do not match the page's.
"""

import random
import textwrap

import cv2
import numpy as np
import pytest
from conftest import MODEL
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from ocrcli.recognition.charset import DEFAULT_ALPHABET, Charset
from ocrcli.train.align import align_page

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason=f"shipped model {MODEL} is missing")

WORDS = ("the of and to in is was for on that with as by at from his her an were which are this be or have had not "
         "but one all their they there been has would who when will more no if out so said what up its about into than "
         "them can only other new some could time these two may then do first any my now such like our over man me even "
         "most made after also did many before must through back years where much your way well down should because each "
         "just those people how too little state good very make world still own see men work long get here between both").split()


def writer_page(rng: random.Random, n_lines: int = 6, size: int = 34) -> tuple[np.ndarray, list[str]]:
    font = ImageFont.load_default(size=size)
    lines = []
    for _ in range(n_lines):
        words: list[str] = []
        while len(" ".join(words)) < rng.randint(28, 44):
            words.append(rng.choice(WORDS))
        lines.append(" ".join(words))
    pitch = int(size * 2.3)
    im = Image.new("L", (1300, 160 + pitch * n_lines), 240)
    draw = ImageDraw.Draw(im)
    for i, line in enumerate(lines):
        x = 80.0
        for ch in line:  # wide letter spacing
            draw.text((x, 80 + i * pitch), ch, fill=30, font=font)
            x += draw.textlength(ch, font=font) + size * 0.18
    page = np.asarray(im)
    h, w = page.shape
    page = cv2.warpAffine(page, np.float32([[1, -0.6, 0.6 * h / 2], [0, 1, 0]]), (w, h), borderValue=240)  # strong slant
    # A very heavy pen: with a 2-px pen and a -0.5 slant, session 31's model read this writer at
    # 0.85% CER, too few errors for adaptation to show.
    return cv2.erode(page, np.ones((3, 3), np.uint8)), lines


def _peaked(text: str, charset: Charset, frames_per_char: int = 3) -> np.ndarray:
    """Log-probabilities of a model that is sure of ``text`` (blanks between characters)."""
    labels = charset.encode(text)
    lp = np.full((len(labels) * frames_per_char + 2, charset.num_classes), -12.0, np.float32)
    lp[:, 0] = -1e-3
    for i, k in enumerate(labels):
        lp[1 + i * frames_per_char, :] = -12.0
        lp[1 + i * frames_per_char, k] = -1e-3
    return lp


def test_alignment_fixes_cuts_that_the_readings_get_wrong():
    charset = Charset(DEFAULT_ALPHABET)
    truth = ["we left at dawn", "and the rain came", "down on the hills"]
    # The readings put "and" on the first line; the images (log-probs) say otherwise.
    hyps = ["we left at dawn and", "the rain came", "down on the hills"]
    aligned = align_page(hyps, [_peaked(t, charset) for t in truth], " ".join(truth), charset)
    assert [a.text for a in aligned] == truth and all(a.kept for a in aligned)
    # A line the text does not have is not forced to take words, and is dropped.
    lines = ["we left at dawn", "zzzz qqq", "down on the hills"]
    aligned = align_page(lines, [_peaked(t, charset) for t in lines], "we left at dawn down on the hills", charset)
    assert aligned[1].kept is False
    assert [a.text for a in aligned if a.kept] == ["we left at dawn", "down on the hills"]


def test_adapt_end_to_end_learns_the_writer(tmp_path):
    from ocrcli.cli import app
    from ocrcli.config import RunConfig
    from ocrcli.documents import Page
    from ocrcli.metrics import ErrorCounter
    from ocrcli.preprocess import preprocess
    from ocrcli.recognition.engine import Recognizer
    from ocrcli.recognition.weights import read_metadata
    from ocrcli.segment import find_lines, line_crops

    rng = random.Random(7)
    folder = tmp_path / "writer"
    folder.mkdir()
    for k in range(3):
        page, lines = writer_page(rng)
        Image.fromarray(page).save(folder / f"page{k}.png")
        (folder / f"page{k}.txt").write_text(textwrap.fill(" ".join(lines), width=23) + "\n", encoding="utf-8")
    (folder / "page3.png").write_bytes(b"\x89PNG damaged")  # fails alone
    (folder / "page3.txt").write_text("nothing", encoding="utf-8")
    out = tmp_path / "writer.safetensors"
    result = CliRunner().invoke(app, ["adapt", str(folder), "-o", str(out), "--steps", "40", "--holdout", "0.2",
                                      "--device", "cpu"])
    assert result.exit_code == 1, result.output  # page3.png could not be read; the others were used
    assert "page3.png" in result.stderr and "CER" in result.stderr
    meta = read_metadata(out).info
    assert meta["adapted_from"]["model"] == MODEL.name and meta["adapt_pages"] == 3
    assert meta["adapt_lines"] + meta["adapt_holdout_lines"] >= 17  # at least 17 of the 18 lines aligned
    assert "val_cer" not in meta

    # A page of the same writer that adapt never saw: the adapted model makes fewer errors.
    page, lines = writer_page(rng)
    prepared = preprocess(Page(page, 1, (page.shape[1], page.shape[0])), RunConfig().preprocess)
    crops = [c.image for c in line_crops(prepared, find_lines(prepared))]
    assert len(crops) == len(lines)
    errors = {}
    for name, path in (("base", MODEL), ("adapted", out)):
        counter = ErrorCounter()
        for text, ref in zip(Recognizer(path, "cpu").recognize(crops), lines):
            counter.add(text.text, ref)
        errors[name] = counter.cer
    assert errors["base"] > 0.01, errors  # the writer is not trivial for the base model
    assert errors["adapted"] < 0.7 * errors["base"], errors


def test_adapt_usage_errors(tmp_path):
    from ocrcli.cli import app

    page, _ = writer_page(random.Random(1), n_lines=2)
    Image.fromarray(page).save(tmp_path / "p.png")
    runner = CliRunner()
    missing = runner.invoke(app, ["adapt", str(tmp_path / "p.png"), "-o", str(tmp_path / "m.safetensors")])
    assert missing.exit_code == 3 and "p.png: transcription" in missing.stderr  # no p.txt beside it
    mismatch = runner.invoke(app, ["adapt", str(tmp_path / "p.png"), "--text", "a.txt", "--text", "b.txt", "-o", "m.safetensors"])
    assert mismatch.exit_code == 2 and "2 --text files for 1 inputs" in mismatch.stderr
