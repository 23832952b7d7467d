"""Batching of line pieces in the recognizer."""

import random

from ocrcli.recognition.engine import _batches


def test_batches_keep_order_and_respect_both_limits():
    rng = random.Random(3)
    widths = sorted(rng.randint(40, 2048) for _ in range(500))
    order = list(range(len(widths)))
    batches = _batches(order, widths, batch_size=32, max_pixels=3072)
    assert [k for b in batches for k in b] == order  # every piece once, in width order
    for b in batches:
        assert len(b) <= 32
        assert len(b) == 1 or max(widths[k] for k in b) * len(b) <= 3072
    # a piece wider than half the budget goes alone; short lines fill a batch up to batch_size
    assert all(len(b) == 1 for b in batches if widths[b[0]] > 1536)
    assert [len(b) for b in _batches(list(range(40)), [50] * 40, 32, 3072)] == [32, 8]


def test_gpu_budget_gives_full_batches():
    widths = [2048] * 100
    batches = _batches(list(range(100)), widths, batch_size=64, max_pixels=64 * 2048)
    assert [len(b) for b in batches] == [64, 36]
