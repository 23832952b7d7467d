"""Training-time data: augmentation and synthetic lines (fonts come from the shared data)."""

import numpy as np

from conftest import needs_shared, render_line
from ocrcli.recognition.charset import DEFAULT_ALPHABET, Charset
from ocrcli.recognition.lineimage import fit_rows, normalize_line
from ocrcli.train.augment import augment, bilevel
from ocrcli.train.data import bucketed_batches


def test_augment_keeps_a_readable_line():
    line = render_line("Augmented line")
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = augment(line, rng)
        assert out.dtype == np.uint8 and out.ndim == 2
        assert 0.5 * line.shape[1] < out.shape[1] < 2.5 * line.shape[1]
        assert (out < 128).any()  # ink survived


def test_some_training_views_are_black_and_white_scans():
    # Grey ink of several shades on grey paper, as a scan has it.
    line = render_line("Black and white")
    line = (70 + line.astype(np.float32) * (200 - 70) / 255).astype(np.uint8)
    ink = line < 135
    rng = np.random.default_rng(1)
    for _ in range(20):
        out = bilevel(line, rng)
        assert out.shape == line.shape and out.dtype == np.uint8
        # Black ink on white paper, with at most the grey steps of a 2x shrink along the edges.
        assert len(np.unique(out)) <= 5 and out.min() == 0 and out.max() == 255
        dark = out < 128
        assert (dark & ink).sum() / (dark | ink).sum() > 0.7
    # About a quarter of the augmented views are such scans.
    views = [augment(line, rng) for _ in range(300)]
    share = np.mean([len(np.unique(v)) <= 5 for v in views])
    assert 0.05 < share < 0.35


def test_some_training_views_carry_dust_specks(monkeypatch):
    import ocrcli.train.augment as aug

    line = render_line("Dust and toner")
    paper = line > 200
    rng = np.random.default_rng(2)
    for _ in range(20):
        out = aug.specks(line, rng)
        assert out.shape == line.shape and out.dtype == np.uint8
        new = paper & (out < 160)  # dark dots where there was paper
        assert 0.001 < new.sum() / line.size < 0.04  # 0.2-2% of the pixels, a quarter of them 2 x 2
        assert np.array_equal(out[~new & paper], line[~new & paper])
    calls = []
    monkeypatch.setattr(aug, "specks", lambda gray, rng: calls.append(1) or gray)
    for _ in range(300):
        aug.augment(line, rng)
    assert 0.1 < len(calls) / 300 < 0.3


def test_some_training_views_carry_sensor_grain(monkeypatch):
    import ocrcli.train.augment as aug

    line = render_line("Grain of a dim photo")
    contrast = float(np.percentile(line, 90) - np.percentile(line, 2))
    rng = np.random.default_rng(3)
    for _ in range(20):
        out = aug.grain(line, rng)
        assert out.shape == line.shape and out.dtype == np.uint8
        noise = (out.astype(float) - line)[line > 200]  # on the paper (240): clipped above, not below
        sigma = -np.percentile(noise, 15.87)  # one standard deviation below the paper
        assert 0.06 * contrast < sigma < 0.22 * contrast
    calls = []
    monkeypatch.setattr(aug, "grain", lambda gray, rng: calls.append(1) or gray)
    for _ in range(400):
        aug.augment(line, rng)
    assert 0.04 < len(calls) / 400 < 0.18


def test_normalize_line_is_deterministic_and_ink_high():
    line = render_line("Hello")
    a, b = normalize_line(line, 40), normalize_line(line, 40)
    assert a.shape[0] == 40 and np.array_equal(a, b)
    assert a.max() > 0.9 and np.median(a) < 0.1  # mostly paper (0), ink near 1
    blank = np.full((30, 200), 230, np.uint8)
    assert normalize_line(blank, 40).max() < 0.3  # a blank crop is not stretched into noise


def _ink_rows(gray):
    rows = np.flatnonzero((gray < 128).any(axis=1))
    return rows[0], rows[-1]


def test_fit_rows_cuts_wide_margins_and_keeps_the_ink():
    line = render_line("Hello world, quite a long line")  # Pillow's font: body about 0.2 of the crop
    body = line.shape[0] * 0.2
    for pad in (0, 20, 80, 300):
        padded = np.pad(line, ((pad, pad), (0, 0)), constant_values=240)
        kept = fit_rows(padded)
        assert np.shares_memory(kept, padded) and kept.shape[1] == padded.shape[1]
        top, bottom = _ink_rows(kept)
        assert _ink_rows(padded)[1] - _ink_rows(padded)[0] == bottom - top  # no ink row lost
        # A margin of one body at most is left past the ink, then at most an eighth cut more.
        assert top <= body + 2 and kept.shape[0] - 1 - bottom <= body + 2, pad
    assert fit_rows(np.pad(line, ((300, 300), (0, 0)), constant_values=240)).shape[0] < line.shape[0] + 2 * body
    # A line whose body fills less than 0.22 of a crop with narrow margins loses at most an eighth
    # of its rows, evenly above and below: here a dense body band and long thin ascenders and
    # descenders reaching nearly to the crop's edges.
    tall = np.full((100, 300), 240, np.uint8)
    tall[40:60, 20:280] = 30
    for x in range(20, 280, 20):
        tall[2:98, x:x + 2] = 30
    kept = fit_rows(tall)
    assert 7 / 8 * 100 - 1 <= kept.shape[0] < 100
    offset = (kept.ctypes.data - tall.ctypes.data) // tall.strides[0]  # rows cut above
    assert abs(offset - (100 - kept.shape[0] - offset)) <= 1


def test_fit_rows_leaves_tight_and_blank_crops_whole():
    line = render_line("Hello world")
    tight = line[_ink_rows(line)[0]:_ink_rows(line)[1] + 1]  # no margin: the body is a large share
    assert fit_rows(tight).shape == tight.shape
    blank = np.full((60, 300), 235, np.uint8)
    assert fit_rows(blank).shape == blank.shape
    assert fit_rows(np.zeros((5, 40), np.uint8)).shape == (5, 40)  # too few rows to judge


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
