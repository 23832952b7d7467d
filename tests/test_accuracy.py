"""The shipped model reads as well as its model card says (within 2 CER points)."""

import re

import pytest

from conftest import FIXTURE_LINES, MODEL, ROOT, needs_shared
from ocrcli.evaluate import evaluate_lines

CARD = ROOT / "models" / "README.md"


def _card_cer(label: str) -> float:
    """The CER the model card states on a line like '<!-- cer:fixture -->... 12.34% ...'."""
    text = CARD.read_text(encoding="utf-8")
    match = re.search(rf"<!-- cer:{label} -->[^\n]*?([0-9]+(?:\.[0-9]+)?)%", text)
    assert match, f"models/README.md states no '{label}' CER"
    return float(match.group(1)) / 100


@pytest.fixture(scope="module")
def fixture_report():
    if not MODEL.is_file():
        pytest.skip("shipped model missing")
    return evaluate_lines(FIXTURE_LINES, MODEL, "cpu", None, 32)


def test_fixture_lines_cer_matches_model_card(fixture_report):
    report = fixture_report
    cer = report.counters["all"].cer
    assert report.counters["all"].lines == 350
    assert cer <= _card_cer("fixture") + 0.02, f"CER {cer:.4f} on the fixture lines is worse than the card says"


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped model missing")
def test_greedy_decoding_cer_matches_model_card():
    report = evaluate_lines(FIXTURE_LINES, MODEL, "cpu", None, 32, decoder="greedy")
    cer = report.counters["all"].cer
    assert cer <= _card_cer("fixture-greedy") + 0.02, f"greedy CER {cer:.4f} on the fixture lines is worse than the card says"


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped model missing")
@pytest.mark.parametrize("decoder, label", [("beam", "val"), ("greedy", "val-greedy")])
def test_full_validation_cer_matches_model_card(decoder, label):
    val = needs_shared("data", "val.tsv")
    report = evaluate_lines(val, MODEL, "cpu", None, 32, decoder=decoder)
    cer = report.counters["all"].cer
    assert cer <= _card_cer(label) + 0.02, f"val CER {cer:.4f} ({decoder}) is worse than the card says"


def test_low_confidence_means_more_errors(fixture_report):
    """--review-below relies on it: CER must fall as line confidence rises."""
    deciles = fixture_report.by_confidence(10)
    assert len(deciles) == 10 and sum(c.lines for _, _, c in deciles) == 350
    cers = [c.cer for _, _, c in deciles]
    assert cers[0] > cers[-1] + 0.2
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(cers[:3]) > mean(cers[3:7]) > mean(cers[7:])  # least confident deciles err most
    lows = [lo for lo, _, _ in deciles]
    assert lows == sorted(lows)


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped model missing")
def test_lines_cropped_with_wide_margins_read_almost_as_well_as_tight_ones():
    """A user's line crop with a lot of paper above and below is trimmed before it is read
    (``fit_rows``): the 40-px input then spends its rows on the writing, not the margin."""
    import cv2
    import numpy as np

    from ocrcli.metrics import ErrorCounter
    from ocrcli.recognition.charset import normalize_text
    from ocrcli.recognition.engine import Recognizer

    rows = [line.split("\t") for line in FIXTURE_LINES.read_text(encoding="utf-8").splitlines()]
    tight = [cv2.imread(str(FIXTURE_LINES.parent / path), cv2.IMREAD_GRAYSCALE) for path, _, _ in rows]
    loose = [cv2.copyMakeBorder(g, 16, 16, 0, 0, cv2.BORDER_CONSTANT, value=int(np.percentile(g, 90))) for g in tight]
    rec = Recognizer(MODEL, "cpu", decoder="greedy")

    def cer(images, fit):
        counter = ErrorCounter()
        for read, (_, text, _) in zip(rec.recognize(images, fit=fit), rows):
            counter.add(normalize_text(read.text), text)
        return counter.cer

    as_given, loose_as_given, loose_fitted = cer(tight, False), cer(loose, False), cer(loose, True)
    # Measured: 21.8% as given, 31.1% with 16 px more paper above and below, 22.6% trimmed.
    assert loose_fitted < loose_as_given - 0.06
    assert loose_fitted < as_given + 0.025
