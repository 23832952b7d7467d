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


@dataclass(frozen=True)
class WordSpan:
    """A word of a decoded line: its text, horizontal extent in crop pixels, and confidence."""

    text: str
    x0: float
    x1: float
    confidence: float


def split_words(text: str, xs: list[float], probs: list[float]) -> list[WordSpan]:
    """Cut a decoded line into words using where CTC emitted each character.

    ``xs`` is the crop x position of each character of ``text`` and ``probs`` its probability. A
    word spans from half a character pitch before its first character to half after its last.
    """
    if len(xs) != len(text) or len(probs) != len(text):
        raise ValueError("one position and one probability are needed per character")
    steps = np.diff(xs) if len(xs) > 1 else np.array([])
    half = float(np.median(steps)) / 2 if len(steps) else 8.0
    words: list[WordSpan] = []
    start = None
    for i, ch in enumerate(text + " "):
        if ch != " " and start is None:
            start = i
        elif ch == " " and start is not None:
            p = np.maximum(probs[start:i], 1e-12)
            words.append(WordSpan(text[start:i], max(0.0, xs[start] - half), xs[i - 1] + half, float(np.exp(np.mean(np.log(p))))))
            start = None
    return words
