"""Build the character language model of beam-search decoding from line transcriptions."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ocrcli.recognition.charset import normalize_text
from ocrcli.recognition.lm import BOS, EOS, CharLM


SMOOTHINGS = ("kneser-ney", "absolute")


def build_charlm(texts: Iterable[str], order: int = 6, discount: float = 0.8, vocabulary: int = 200,
                 min_count: int = 1, info: dict | None = None, smoothing: str = "kneser-ney") -> CharLM:
    """Count every n-gram (n = 1..order) of the normalised lines, each padded with BOS and ended by EOS.

    ``smoothing``: "absolute" keeps every order's plain counts (interpolated absolute discounting);
    "kneser-ney" replaces the counts of the shorter contexts, which the search only reaches by
    backing off, with continuation counts: in how many distinct contexts one character longer the
    n-gram was seen (contexts that start at the line's start keep their plain counts: nothing
    precedes them). The same file format and the same formula at decoding (interpolated Kneser-Ney
    is absolute discounting over those counts). Contexts of 3 or more characters seen fewer than
    ``min_count`` times are left out (they back off to their shorter contexts): a smaller file that
    loads faster.
    """
    if order < 1:
        raise ValueError("order must be at least 1")
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHINGS)}, not {smoothing!r}")
    tables: list[dict[str, dict[str, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in range(order)]
    lines = 0
    for raw in texts:
        text = normalize_text(raw)
        if not text:
            continue
        lines += 1
        padded = BOS * (order - 1) + text + EOS
        for i in range(order - 1, len(padded)):
            char = padded[i]
            for n in range(order):
                tables[n][padded[i - n:i]][char] += 1
    kept = [{h for h, f in level.items() if n < 3 or sum(f.values()) >= min_count} for n, level in enumerate(tables)]
    if smoothing == "kneser-ney":
        continuation: list[dict[str, dict[str, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in range(order - 1)]
        for n in range(1, order):
            for context, followers in tables[n].items():
                for char in followers:  # the n-gram context[1:] + char follows one more distinct character
                    continuation[n - 1][context[1:]][char] += 1
        tables = [{h: f if h.startswith(BOS) else continuation[n][h] for h, f in level.items()}
                  for n, level in enumerate(tables[:-1])] + [tables[-1]]
    counts = [{h: "".join(f) + "\t" + ",".join(map(str, f.values())) for h, f in sorted(level.items()) if h in kept[n]}
              for n, level in enumerate(tables)]
    return CharLM(order, discount, vocabulary, counts, info={**(info or {}), "lines": lines, "smoothing": smoothing})


WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


def wordnet_glosses(folder: Path, limit: int | None = None, min_length: int = 12) -> list[str]:
    """English phrases from WordNet 3.0's glosses (``folder``: its ``data.*`` files, e.g. Debian's
    wordnet-base in /usr/share/wordnet, the default of ``ocr train-lm --wordnet-dir``): definitions
    and example sentences.

    Each synset line of the ``data.*`` files ends in ``| gloss``, whose parts are separated by
    "; " (examples in double quotes); every part of ``min_length`` characters or more is one line.
    The lines are shuffled with a fixed seed, so the first ``limit`` are always the same sample.
    Raises OSError when a data file is missing.
    """
    lines = []
    for name in WORDNET_FILES:
        with open(Path(folder) / name, encoding="latin-1") as handle:
            for row in handle:
                if row.startswith("  ") or " | " not in row:  # the licence header, or no gloss
                    continue
                for part in row.split(" | ", 1)[1].strip().split("; "):
                    part = part.strip().strip('"').strip()
                    if len(part) >= min_length:
                        lines.append(part)
    random.Random(0).shuffle(lines)
    return lines[:limit]


def tune_weights(lm: CharLM, log_probs: list, references: list[str], alphabet: str,
                 alphas=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0), betas=(0.5, 1.0, 1.5, 2.0, 3.0, 4.0)) -> list[tuple[float, float, float]]:
    """CER of beam search for each (alpha, beta) on lines whose network outputs are ``log_probs``;
    sets the best pair on ``lm`` and returns (cer, alpha, beta) for all, best first."""
    from ocrcli.metrics import ErrorCounter
    from ocrcli.recognition.decode import beam_decode

    refs = [normalize_text(r) for r in references]
    results = []
    for alpha in alphas:
        for beta in betas:
            lm.alpha, lm.beta = alpha, beta
            counter = ErrorCounter()
            for lp, ref in zip(log_probs, refs):
                if lp is None:
                    counter.add("", ref)
                    continue
                labels = beam_decode(lp, alphabet, lm).labels
                counter.add(normalize_text("".join(alphabet[k - 1] for k in labels)), ref)
            results.append((counter.cer, alpha, beta))
    results.sort()
    lm.alpha, lm.beta = results[0][1], results[0][2]
    return results
