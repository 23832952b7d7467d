"""CTC decoding: collapse repeats, drop blanks, and turn frame probabilities into confidences."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from ocrcli.recognition.lm import EOS, Lexicon, fold


@dataclass(frozen=True)
class Decoded:
    """A decoded line: class indices, the frame where each was emitted, and per-character probability;
    ``score``: beam search's total for the text (frames and language model; None from greedy decoding)."""

    labels: list[int]
    frames: list[int]
    probs: list[float]
    score: float | None = None

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


_NEG = -1e30
_DEAD = _NEG / 2
# Beam search: 128 prefixes, classes below e^-6.5 in a frame not extended: 17.32% CER on the 2,574
# val lines outside the LM's tuning subset against 17.66% for 64/e^-5, at 4 ms a line of decoding
# against 1 ms (the network takes about 13 ms); wider beams gain at most 0.06 point more. The model
# card ("Decoding and the language model") has every width measured. (The Python search, where the
# C one is not built, reads about 10 times fewer lines per second.)
BEAM_WIDTH = 128
BEAM_PRUNE = -6.5


def _logsumexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


def beam_decode(log_probs: np.ndarray, alphabet: str, lm, width: int = BEAM_WIDTH, prune: float = BEAM_PRUNE) -> Decoded:
    """CTC prefix beam search of one line's (T, C) log-probabilities with a character LM (``lm``:
    a ``CharLM``; each character scores ``lm.alpha * log P(char | text so far) + lm.beta``, and,
    where the LM has a lexicon, each word not in it ``lm.oov`` once: at the letter after which no
    lexicon word begins with it, or at its end if it only begins one).

    Classes with log-probability below ``prune`` in a frame are not extended there; runs of frames
    where only the blank passes are applied in one step (most frames of a line). The search runs in
    C (``_ctcbeam``, built with the package) and in Python where that extension is missing: the
    same operations in the same order, so the same text.
    """
    compiled = lm.compiled()
    if compiled is not None:
        from ocrcli.recognition import _ctcbeam

        words = (lm.lexicon.compiled(), lm.lexicon.folds(alphabet), lm.oov) if lm.checks_words else ()
        labels, starts, score = _ctcbeam.decode(compiled, np.ascontiguousarray(log_probs, np.float32), [0, *lm.positions(alphabet)],
                                         alphabet, lm.alpha, lm.beta, width, prune, lm.positions(EOS)[0], *words)
    else:
        labels, starts, score = search_python(log_probs, alphabet, lm, width, prune)
    # Each character's frame and probability: its most likely frame between the frame where its
    # prefix first appeared and the next character's (the first frame may be a weak early guess).
    starts = [*starts, len(log_probs)]
    peaks, probs = [], []
    for i, k in enumerate(labels):
        segment = log_probs[starts[i]:max(starts[i + 1], starts[i] + 1), k]
        j = int(segment.argmax())
        peaks.append(starts[i] + j)
        probs.append(math.exp(float(segment[j])))
    return Decoded(list(labels), peaks, probs, score)


def search_python(log_probs: np.ndarray, alphabet: str, lm, width: int = BEAM_WIDTH,
                  prune: float = BEAM_PRUNE) -> tuple[list[int], list[int], float]:
    """The beam search in Python: the best text's classes, the frame where each first appeared, and
    its score (frames and language model, as the search ranked it)."""
    alpha, beta = lm.alpha, lm.beta
    lexicon, oov = (lm.lexicon, lm.oov) if lm.checks_words else (None, 0.0)
    history0 = lm.start()
    position = [0, *lm.positions(alphabet)]  # model class -> index in the LM's distributions
    letters = [None, *map(fold, alphabet)]  # model class -> its case-folded letter (None: not a letter)
    exp, log1p = math.exp, math.log1p
    # prefix -> [log P(prefix, path ending in blank), log P(prefix, path ending in its last char)]
    beams: dict[str, list[float]] = {"": [0.0, _NEG]}
    lm_score = {"": 0.0}  # prefix -> its LM score (weighted, with the per-character bonus)
    next_logs: dict[str, object] = {}  # prefix -> LM log-distribution of the character after it
    first_frame: dict[str, int] = {}  # prefix -> frame where it first appeared (its last character)
    # with a lexicon: prefix -> (the word it ends in, case-folded letters; whether that word was charged)
    word_of: dict[str, tuple[str, bool]] = {"": ("", False)}

    def word_end(word: str, charged: bool) -> float:  # the charge for a word that ends here
        return oov if word and not charged and lexicon.state(word) != Lexicon.WORD else 0.0
    passing = log_probs > prune
    only_blank = ~passing[:, 1:].any(axis=1)
    blank_sums = np.concatenate([[0.0], np.cumsum(log_probs[:, 0], dtype=np.float64)])  # runs of blanks: one subtraction
    t, frames = 0, len(log_probs)
    while t < frames:
        if only_blank[t]:
            end = t + 1
            while end < frames and only_blank[end]:
                end += 1
            blank = float(blank_sums[end] - blank_sums[t])
            beams = {pre: [(pb + log1p(exp(pnb - pb)) if pb >= pnb else pnb + log1p(exp(pb - pnb))) + blank, _NEG]
                     for pre, (pb, pnb) in beams.items()}
            t = end
            continue
        ks = np.flatnonzero(passing[t, 1:]) + 1
        chars = [(alphabet[k - 1], position[k], p, letters[k]) for k, p in zip(ks.tolist(), log_probs[t, ks].tolist())]
        p_blank = float(log_probs[t, 0]) if passing[t, 0] else None
        following: dict[str, list[float]] = {}

        def add(prefix: str, slot: int, v: float) -> None:  # log-add v to one of prefix's two scores
            if v <= _DEAD:  # a path that died (a repeat after a beam with no blank-ending path)
                return
            entry = following.get(prefix)
            if entry is None:
                following[prefix] = [v, _NEG] if slot == 0 else [_NEG, v]
            else:
                a = entry[slot]
                entry[slot] = a + log1p(exp(v - a)) if a >= v else v + log1p(exp(a - v))

        for pre, (pb, pnb) in beams.items():
            total = pb + log1p(exp(pnb - pb)) if pb >= pnb else pnb + log1p(exp(pb - pnb))
            if p_blank is not None:
                add(pre, 0, total + p_blank)
            last = pre[-1:]
            logs = next_logs.get(pre)
            if logs is None:
                logs = next_logs[pre] = lm.log_dist(history0 + pre)
            base = lm_score[pre]
            for char, pos, p, letter in chars:
                extended = pre + char
                if extended not in lm_score:
                    score = base + alpha * logs[pos] + beta
                    if lexicon is not None:
                        word, charged = word_of[pre]
                        if letter is not None:  # the word goes on: charged once, when no lexicon word begins so
                            word += letter
                            if not charged and lexicon.state(word) == Lexicon.NOT_A_BEGINNING:
                                charged = True
                                score += oov
                        else:
                            score += word_end(word, charged)
                            word, charged = "", False
                        word_of[extended] = (word, charged)
                    lm_score[extended] = score
                    first_frame[extended] = t
                if char == last:  # a repeat extends the text only after a blank; otherwise it continues pre
                    add(pre, 1, pnb + p)
                    add(extended, 1, pb + p)
                else:
                    add(extended, 1, total + p)
        if len(following) > width:
            scored = [((b + log1p(exp(nb - b)) if b >= nb else nb + log1p(exp(b - nb))) + lm_score[pre], pre)
                      for pre, (b, nb) in following.items()]
            beams = {pre: following[pre] for _, pre in heapq.nlargest(width, scored)}
        else:
            beams = following
        t += 1
    eos = lm.positions(EOS)[0]
    final = {pre: _logsumexp(*beams[pre]) + lm_score[pre] + alpha * lm.log_dist(history0 + pre)[eos]
             + (word_end(*word_of[pre]) if lexicon is not None else 0.0) for pre in beams}
    best = max(final, key=final.__getitem__)
    score = final[best]
    index = {ch: i + 1 for i, ch in enumerate(alphabet)}
    return [index[ch] for ch in best], [first_frame[best[:i + 1]] for i in range(len(best))], score
