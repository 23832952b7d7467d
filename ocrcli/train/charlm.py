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


def text_pieces(paths: Iterable[Path], limit: int | None = None, alphabet: str | None = None,
                min_length: int = 20, max_length: int = 60) -> list[str]:
    """Line-sized pieces of plain prose, for counting beside transcriptions: every UTF-8 ``.txt``
    file given (a folder: the ``.txt`` files in it, sorted), each of its lines (a paragraph) cut at
    spaces into pieces of about ``min_length`` to ``max_length`` characters (a length drawn for each
    piece with a fixed seed), as a handwritten line holds. Pieces with a character ``alphabet``
    cannot write (after normalisation) are left out. The pieces are shuffled with a fixed seed, so
    the first ``limit`` are always the same sample. Raises OSError or UnicodeDecodeError for a
    file that cannot be read."""
    rng = random.Random(0)
    allowed = None if alphabet is None else set(alphabet)
    files = []
    for path in map(Path, paths):
        files += sorted(path.glob("*.txt")) if path.is_dir() else [path]
    pieces = []
    for file in files:
        for paragraph in file.read_text(encoding="utf-8").splitlines():
            words, i = paragraph.split(), 0
            while i < len(words):
                target, piece, length = rng.randint(min_length, max_length), [words[i]], len(words[i])
                i += 1
                while i < len(words) and length + 1 + len(words[i]) <= target:
                    piece.append(words[i])
                    length += 1 + len(words[i])
                    i += 1
                text = normalize_text(" ".join(piece))
                if text and (allowed is None or set(text) <= allowed | {" "}):
                    pieces.append(text)
    rng.shuffle(pieces)
    return pieces[:limit] if limit else pieces


def wordfreq_words(languages: Iterable[str], count: int) -> list[str]:
    """The ``count`` most frequent words of each language in the ``wordfreq`` package's "large"
    lists (word frequencies from Wikipedia, subtitles, news, books, web text...; data CC BY-SA 4.0),
    for ``ocr train-lm --wordfreq-words``. Raises ImportError where wordfreq is not installed and
    LookupError for a language it does not have."""
    import wordfreq

    words = []
    for language in languages:
        if language not in wordfreq.available_languages(wordlist="large"):
            raise LookupError(f"wordfreq has no large word list for {language!r}")
        words += wordfreq.top_n_list(language, count, wordlist="large")
    return words


TUNE_ALPHAS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
TUNE_BETAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
TUNE_OOVS = (0.0, -2.0, -3.0, -4.0, -5.0, -6.0)  # with a lexicon
UNTUNED_OOV = -4.0  # the charge of a lexicon built without --tune-on (the shipped model's tuned value)


def tune_weights(lm: CharLM, log_probs: list, references: list[str], alphabet: str,
                 alphas=TUNE_ALPHAS, betas=TUNE_BETAS, oovs=None, threads: int = 1) -> list[tuple[float, float, float, float]]:
    """CER of beam search for each (alpha, beta, oov) on lines whose network outputs are
    ``log_probs``; sets the best on ``lm`` and returns (cer, alpha, beta, oov) for all, best first.
    ``oovs``: the charges tried for words outside the lexicon (default: TUNE_OOVS where ``lm`` has
    a lexicon, else only its own). ``threads``: lines decoded side by side (the C search releases
    the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from ocrcli.metrics import ErrorCounter
    from ocrcli.recognition.decode import beam_decode

    if oovs is None:
        oovs = TUNE_OOVS if lm.lexicon is not None and len(lm.lexicon) else (lm.oov,)
    refs = [normalize_text(r) for r in references]

    def read(lp) -> str:
        return "" if lp is None else normalize_text("".join(alphabet[k - 1] for k in beam_decode(lp, alphabet, lm).labels))

    results = []
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for alpha in alphas:
            for beta in betas:
                for oov in oovs:
                    lm.alpha, lm.beta, lm.oov = alpha, beta, oov
                    counter = ErrorCounter()
                    for hypothesis, ref in zip(pool.map(read, log_probs), refs):
                        counter.add(hypothesis, ref)
                    results.append((counter.cer, alpha, beta, oov))
    results.sort()
    lm.alpha, lm.beta, lm.oov = results[0][1:]
    return results
