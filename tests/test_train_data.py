"""Training-time data: augmentation and synthetic lines (fonts come from the shared data)."""

import numpy as np

from conftest import needs_shared, render_line
from ocrcli.recognition.charset import DEFAULT_ALPHABET, Charset
from ocrcli.recognition.lineimage import normalize_line
from ocrcli.train.augment import augment
from ocrcli.train.data import bucketed_batches


def test_augment_keeps_a_readable_line():
    line = render_line("Augmented line")
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = augment(line, rng)
        assert out.dtype == np.uint8 and out.ndim == 2
        assert 0.5 * line.shape[1] < out.shape[1] < 2.5 * line.shape[1]
        assert (out < 128).any()  # ink survived


def test_normalize_line_is_deterministic_and_ink_high():
    line = render_line("Hello")
    a, b = normalize_line(line, 40), normalize_line(line, 40)
    assert a.shape[0] == 40 and np.array_equal(a, b)
    assert a.max() > 0.9 and np.median(a) < 0.1  # mostly paper (0), ink near 1
    blank = np.full((30, 200), 230, np.uint8)
    assert normalize_line(blank, 40).max() < 0.3  # a blank crop is not stretched into noise


def test_width_buckets_cover_every_sample_once():
    widths = np.random.default_rng(0).integers(50, 900, 1000)
    batches = bucketed_batches(widths, 24, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([widths[b].max() - widths[b].min() for b in batches])
    assert spread < 200  # batches hold lines of similar width


def test_synthetic_lines_render_with_known_characters():
    fonts = needs_shared("fonts")
    from ocrcli.train.synth import SynthPool

    pool = SynthPool(fonts, Charset(DEFAULT_ALPHABET), 40, 0, seed=3)
    samples = pool.render(30)
    assert len(samples) == 30
    for s in samples:
        assert s.image.shape[0] == 40 and s.text and not Charset(DEFAULT_ALPHABET).unknown(s.text)
        assert (s.image < np.percentile(s.image, 90) - 30).any()  # there is ink
