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
