"""Cut a page's plain-text transcription into the text of each line the segmenter found.

The transcription's line breaks need not match the page's (they are ignored): the text is a
stream of words, and the lines found on the page, in reading order, each take a contiguous run of
it. Two passes:

1. Coarse: an edit-distance alignment (rapidfuzz) of the model's readings of all lines, joined,
   against the transcription puts each line boundary at a character of the transcription, snapped
   to the nearest word boundary.
2. Refine: each boundary moves to the word boundary nearby (within ``radius`` words) that makes the
   two neighbouring line images most likely under the model (the CTC log-likelihood of each line's
   text given its image). This is what makes the cut right even when the model misreads words.

A line is kept only when the cut is clear: its text is not empty, the model's reading is not too
far from it (``max_cer``), and each of its two boundaries beats the next best position by at least
``min_margin`` nats of log-likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from ocrcli.recognition.charset import Charset, normalize_text


@dataclass(frozen=True)
class AlignedLine:
    index: int  # the line's position among the page's lines (reading order)
    text: str  # the transcription's words given to this line ('' when none)
    hypothesis: str  # what the model read
    cer: float  # hypothesis against text
    margin: float  # nats by which this line's boundaries beat the next best positions
    kept: bool
    reason: str = ""  # why it was dropped


def _char_map(src: str, dst: str) -> np.ndarray:
    """For every position 0..len(src) of ``src``, the matching position in ``dst`` (monotone)."""
    pos = np.zeros(len(src) + 1, np.int64)
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(src, dst):
        if i2 > i1:
            for p in range(i1, i2 + 1):
                pos[p] = j1 + round((p - i1) * (j2 - j1) / (i2 - i1))
        else:  # text only in dst (the model missed it): a boundary here is mid-way, the refine pass decides
            pos[i1] = (j1 + j2) // 2
    pos[len(src)] = len(dst)
    return np.maximum.accumulate(pos)


class _Scorer:
    """CTC log-likelihood of a run of words given one line's log-probabilities, memoised."""

    def __init__(self, log_probs: list[np.ndarray | None], words: list[str], charset: Charset) -> None:
        import torch

        self.torch = torch
        self.log_probs = [torch.from_numpy(np.ascontiguousarray(lp)).float().unsqueeze(1) if lp is not None else None
                          for lp in log_probs]
        self.words = words
        self.charset = charset
        self.cache: dict[tuple[int, int, int], float] = {}

    def text(self, a: int, b: int) -> str:
        return " ".join(self.words[a:b])

    def __call__(self, line: int, a: int, b: int) -> float:
        key = (line, a, b)
        if key not in self.cache:
            self.cache[key] = self._score(line, self.text(a, b))
        return self.cache[key]

    def _score(self, line: int, text: str) -> float:
        lp = self.log_probs[line]
        if lp is None:
            return 0.0 if not text else -np.inf
        labels = [self.charset.encode(ch)[0] for ch in text if not self.charset.unknown(ch)]
        torch = self.torch
        loss = torch.nn.functional.ctc_loss(
            lp, torch.tensor([labels], dtype=torch.long), torch.tensor([lp.shape[0]]), torch.tensor([len(labels)]),
            blank=0, reduction="sum", zero_infinity=False)
        value = -float(loss)
        return value if np.isfinite(value) else -np.inf


def align_page(hypotheses: list[str], log_probs: list[np.ndarray | None], transcript: str, charset: Charset,
               max_cer: float = 0.8, min_margin: float = 8.0, radius: int = 3, passes: int = 2) -> list[AlignedLine]:
    """Give each of a page's lines (model readings + log-probs, reading order) its run of the transcript's words."""
    words = normalize_text(transcript).split()
    n = len(hypotheses)
    if n == 0:
        return []
    text = " ".join(words)
    starts = np.cumsum([0] + [len(w) + 1 for w in words])  # char offset of each word, and len(text)+1 at the end
    # 1. Coarse cuts: cut k (k=1..n-1) is the index of the first word of line k.
    joined = "\n".join(normalize_text(h) for h in hypotheses)
    seps = [i for i, ch in enumerate(joined) if ch == "\n"]
    to_text = _char_map(joined, text)
    cuts = [0]
    for sep in seps:
        t = to_text[sep] + 1  # the transcript position just after the separator
        best = int(np.argmin(np.abs(starts - t)))
        cuts.append(max(cuts[-1], best))
    cuts.append(len(words))
    # 2. Refine every inner cut with the CTC scores of the two lines it separates.
    score = _Scorer(log_probs, words, charset)
    margins = [np.inf] * (n + 1)
    for _ in range(passes):
        for k in range(1, n):
            lo, hi = max(cuts[k - 1], cuts[k] - radius), min(cuts[k + 1], cuts[k] + radius)
            options = sorted(((score(k - 1, cuts[k - 1], c) + score(k, c, cuts[k + 1]), c) for c in range(lo, hi + 1)),
                             reverse=True)
            cuts[k] = options[0][1]
            finite = [s for s, _ in options if np.isfinite(s)]
            margins[k] = (finite[0] - finite[1]) if len(finite) > 1 else (np.inf if finite else 0.0)
    out = []
    for i, hyp in enumerate(hypotheses):
        seg = score.text(cuts[i], cuts[i + 1])
        hyp_n = normalize_text(hyp)
        cer = Levenshtein.distance(hyp_n, seg) / max(len(seg), 1)
        margin = float(min(margins[i], margins[i + 1]))
        reason = ""
        if not seg:
            reason = "no words of the transcription"
        elif not np.isfinite(score(i, cuts[i], cuts[i + 1])):
            reason = "text too long for the line image"
        elif cer > max_cer:
            reason = f"reading too far from the text (CER {cer:.0%})"
        elif margin < min_margin:
            reason = f"unclear cut (margin {margin:.1f})"
        out.append(AlignedLine(i, seg, hyp_n, cer, margin, not reason, reason))
    return out
