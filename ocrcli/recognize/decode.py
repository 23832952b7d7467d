"""CTC decoding: collapse repeats, drop blanks, and turn frame probabilities into confidences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decoded:
    """A decoded line: class indices, the frame where each was emitted, and per-character probability."""

    labels: list[int]
    frames: list[int]
    probs: list[float]

    @property
    def confidence(self) -> float:
        """Geometric mean of the emitted characters' probabilities (1.0 for an empty line)."""
        if not self.probs:
            return 1.0
        return float(np.exp(np.mean(np.log(np.maximum(self.probs, 1e-12)))))


def greedy_decode(log_probs: np.ndarray) -> Decoded:
    """Best-path decoding of one line's (T, C) log-probabilities; class 0 is the blank."""
    best = log_probs.argmax(axis=1)
    labels, frames, probs = [], [], []
    previous = 0
    for t, k in enumerate(best):
        k = int(k)
        if k != 0 and k != previous:
            labels.append(k)
            frames.append(t)
            probs.append(float(np.exp(log_probs[t, k])))
        elif k != 0 and k == previous and probs:
            probs[-1] = max(probs[-1], float(np.exp(log_probs[t, k])))
        previous = k
    return Decoded(labels, frames, probs)
