"""Character and word error rates (Levenshtein distance via rapidfuzz)."""

from __future__ import annotations

from collections import Counter

from rapidfuzz.distance import Levenshtein


def edit_distance(a: list | str, b: list | str) -> int:
    """Levenshtein distance between two strings or two lists of words."""
    return int(Levenshtein.distance(a, b))


class ErrorCounter:
    """Accumulates character and word edit counts over many (hypothesis, reference) pairs."""

    def __init__(self) -> None:
        self.char_errors = 0
        self.chars = 0
        self.word_errors = 0
        self.words = 0
        self.lines = 0

    def add(self, hypothesis: str, reference: str) -> None:
        self.char_errors += edit_distance(hypothesis, reference)
        self.chars += len(reference)
        self.word_errors += edit_distance(hypothesis.split(), reference.split())
        self.words += len(reference.split())
        self.lines += 1

    def merge(self, other: ErrorCounter) -> None:
        """Add another counter's counts to this one."""
        self.char_errors += other.char_errors
        self.chars += other.chars
        self.word_errors += other.word_errors
        self.words += other.words
        self.lines += other.lines

    @property
    def cer(self) -> float:
        return self.char_errors / max(self.chars, 1)

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.words, 1)


def confusions(hypothesis: str, reference: str) -> Counter:
    """Counts of (reference, hypothesis) character edits; '' stands for an inserted or deleted character."""
    out: Counter = Counter()
    for op in Levenshtein.editops(reference, hypothesis):
        if op.tag == "replace":
            out[(reference[op.src_pos], hypothesis[op.dest_pos])] += 1
        elif op.tag == "delete":
            out[(reference[op.src_pos], "")] += 1
        else:
            out[("", hypothesis[op.dest_pos])] += 1
    return out
