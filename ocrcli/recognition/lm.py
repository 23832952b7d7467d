"""A character n-gram language model for CTC beam search: interpolated absolute discounting.

P(c | h) = max(n(h c) - D, 0) / n(h) + D * t(h) / n(h) * P(c | h shortened by one character),
where n(h) counts characters seen after the context h, t(h) the distinct ones, down to a uniform
distribution over the alphabet. Lines start with BOS context and end with EOS. The counts are the
file's: ``ocr train-lm`` stores continuation counts for the shorter contexts by default, which
makes this interpolated Kneser-Ney (``ocrcli.train.charlm.build_charlm``).

A model may carry a lexicon (``Lexicon``): beam search then charges ``oov`` (a log-probability
penalty) once for every word of a reading that is not in it.

The file is gzip-compressed JSON (no pickle): ``{"format": "ocrcli-charlm", "format_version": 3,
"order", "discount", "vocabulary", "alpha", "beta", "info", "counts", "lexicon", "oov"}`` where
``counts[n]`` is one string for the contexts of n characters, a line each: ``"<context>\t<following
characters>\t<their counts, comma-separated>"`` (a few long strings: the file parses in a fifth of
the time of one string per context, and the C beam search reads them without building Python
tables), and ``lexicon`` is its words, case-folded, one a line (``""``: none). Format 2 is format 3
without a lexicon; format 1, where ``counts[n]`` maps each context to ``"<following
characters>\t<counts>"``, still loads. ``ocr train-lm`` writes it.
"""
from __future__ import annotations

import gzip
import json
import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ocrcli.errors import ModelError

FORMAT = "ocrcli-charlm"
FORMAT_VERSION = 3
BOS, EOS = "\x02", "\x03"
CACHE_CONTEXTS = 12_000  # distributions kept (1.6 KB each): about 20 MB at most


def fold(ch: str) -> str | None:
    """A character as the lexicon sees it: a letter, lower-cased (None for anything else, and for
    the few letters whose lower case is two characters)."""
    if not ch.isalpha():
        return None
    lower = ch.lower()
    return lower if len(lower) == 1 else None


def words_of(text: str) -> list[str]:
    """The words of a text as the lexicon counts them: runs of letters, case-folded ("Aujourd'hui,
    1880" -> ["aujourd", "hui"]); digits, apostrophes and hyphens end a word."""
    words, word = [], []
    for ch in text:
        f = fold(ch)
        if f is not None:
            word.append(f)
        elif word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    return words


class Lexicon:
    """The words beam search checks readings against: ``words_of`` each given string, without the
    words that ``alphabet``'s letters cannot write (they could never match a reading; default: all kept)."""

    NOT_A_BEGINNING, BEGINNING, WORD = 0, 1, 2

    def __init__(self, texts: Iterable[str], alphabet: str | None = None) -> None:
        letters = None if alphabet is None else {f for ch in alphabet if (f := fold(ch)) is not None}
        found = set()
        for text in texts:
            found.update(w for w in words_of(text) if letters is None or set(w) <= letters)
        self._set_text("\n".join(sorted(found)))

    @classmethod
    def from_text(cls, text: str) -> Lexicon:
        """The lexicon of a file's ``lexicon`` string, taken as written (one case-folded word a line:
        splitting and folding 350,000 words again would add a second to every start)."""
        lexicon = cls.__new__(cls)
        lexicon._set_text(text)
        return lexicon

    def _set_text(self, text: str) -> None:
        self.text = text  # as the file stores it
        self._size = text.count("\n") + 1 if text else 0
        self._sorted: list[str] | None = None  # for the Python search, split on first use
        self._compiled = None
        self._folds: tuple[str, list[int]] | None = None

    def __len__(self) -> int:
        return self._size

    def folds(self, alphabet: str) -> list[int]:
        """For the C search: 0, then each character's folded letter's code point (0: not a letter)."""
        if self._folds is None or self._folds[0] != alphabet:
            self._folds = (alphabet, [0, *(ord(f) if (f := fold(ch)) is not None else 0 for ch in alphabet)])
        return self._folds[1]

    def state(self, word: str) -> int:
        """WORD, BEGINNING (of a word, not one itself) or NOT_A_BEGINNING, for a case-folded word."""
        if self._sorted is None:
            self._sorted = sorted(self.text.split("\n")) if self.text else []
        words = self._sorted
        i = bisect_left(words, word)
        if i == len(words) or not words[i].startswith(word):
            return self.NOT_A_BEGINNING
        return self.WORD if words[i] == word else self.BEGINNING

    def compiled(self):
        """The lexicon in the C beam search's form (None where the extension was not built)."""
        if self._compiled is None:
            try:
                from ocrcli.recognition import _ctcbeam
            except ImportError:
                self._compiled = False
            else:
                self._compiled = _ctcbeam.compile_lexicon(self.text)
        return self._compiled or None


class CharLM:
    """The model: ``counts[n][context] = "following characters<TAB>their counts, comma-separated"``,
    given as those tables or packed as in the file (one string per n; unpacked on first use)."""

    def __init__(self, order: int, discount: float, vocabulary: int, counts: list, alpha: float = 0.3,
                 beta: float = 0.3, info: dict | None = None, lexicon: Lexicon | None = None, oov: float = 0.0) -> None:
        self.order = order
        self.discount = discount
        self.vocabulary = vocabulary  # alphabet size + EOS: the uniform floor
        self.alpha = alpha  # LM weight in beam search (tuned for the model named in info)
        self.beta = beta  # bonus per emitted character, against the LM's preference for short text
        self.info = info if info is not None else {}
        self.lexicon = lexicon
        self.oov = oov  # charge (log-probability, <= 0) for each word of a reading not in the lexicon
        if all(isinstance(level, str) for level in counts):
            self._packed, self._counts = list(counts), None
        else:
            self._packed, self._counts = None, list(counts)
        self._index: dict[str, int] = {}  # character -> position in the distributions
        # context -> log P(. | context), in two generations: when the newer one is full the older is
        # dropped, and contexts used since are carried over, so frequent ones stay (bounded memory).
        self._logs: dict[str, array] = {}
        self._older: dict[str, array] = {}
        self._compiled = None  # the tables in the C beam search's form, False where it cannot run

    @property
    def counts(self) -> list[dict[str, str]]:
        if self._counts is None:
            tables = []
            for n, level in enumerate(self._packed):
                table = {}
                for line in level.split("\n") if level else []:
                    context, tab, entry = line[:n], line[n:n + 1], line[n + 1:]
                    if tab != "\t" or "\t" not in entry:
                        raise ValueError(f"damaged language model: a line of the {n}-character contexts reads {line[:40]!r}")
                    table[context] = entry
                tables.append(table)
            self._counts = tables
        return self._counts

    @property
    def packed(self) -> list[str]:
        """The tables as the file stores them."""
        if self._packed is None:
            self._packed = ["\n".join(f"{context}\t{entry}" for context, entry in level.items()) for level in self._counts]
        return self._packed

    def compiled(self):
        """These count tables read into the C beam search (``_ctcbeam``), or None where the
        extension was not built (the Python search then runs). Built once, on first use."""
        if self._compiled is None:
            try:
                from ocrcli.recognition import _ctcbeam
            except ImportError:
                self._compiled = False
            else:
                try:  # it gives the characters it meets their positions in self._index
                    self._compiled = _ctcbeam.compile_lm(self.packed, self._index, self.vocabulary, self.discount, self.order, BOS)
                except ValueError:  # > 255 characters or order > 8: the Python search's job
                    self._compiled = False
        return self._compiled or None

    @property
    def checks_words(self) -> bool:
        """Whether beam search charges words outside the lexicon (it has one and a nonzero charge)."""
        return self.lexicon is not None and len(self.lexicon) > 0 and self.oov != 0.0

    def positions(self, chars: str) -> list[int]:
        """Each character's position in the arrays of ``log_dist`` (assigned on first sight)."""
        index = self._index
        for ch in chars:
            if ch not in index:
                index[ch] = len(index)
        if len(index) > self.vocabulary:
            raise ValueError(f"more distinct characters than the model's vocabulary ({self.vocabulary})")
        return [index[ch] for ch in chars]

    def log_dist(self, history: str) -> array:
        """log P(. | the last order-1 characters of history), indexed by ``positions``; history
        starts with BOS padding. Beam search reads one of these per prefix it extends."""
        if len(self._logs) + self.order > CACHE_CONTEXTS // 2:  # a lookup stores at most order contexts
            self._older, self._logs = self._logs, {}
        return self._dist(history[len(history) - self.order + 1:])

    def logp(self, history: str, char: str) -> float:
        """log P(char | the last order-1 characters of history); history starts with BOS padding."""
        return self.log_dist(history)[self.positions(char)[0]]

    def start(self) -> str:
        return BOS * (self.order - 1)

    def _dist(self, context: str) -> array:
        # P(. | h) from P(. | h without its first character); an unseen context backs off entirely.
        cached = self._logs.get(context)
        if cached is not None:
            return cached
        cached = self._older.get(context)
        if cached is not None:
            self._logs[context] = cached
            return cached
        if context:
            parent_logs = self._dist(context[1:])
        else:
            parent_logs = array("d", [-math.log(self.vocabulary)]) * self.vocabulary
        entry = self.counts[len(context)].get(context) if len(context) < len(self.counts) else None
        if entry is None:
            self._logs[context] = parent_logs
            return parent_logs
        followers, _, numbers = entry.partition("\t")
        counts = [float(n) for n in numbers.split(",")]
        if len(counts) != len(followers):
            raise ValueError(f"damaged language model: context {context!r} has {len(followers)} characters and {len(counts)} counts")
        total = sum(counts)
        share = self.discount * len(followers) / total  # the shorter context's weight
        logs = array("d", parent_logs)
        np.frombuffer(logs)[:] += math.log(share)  # every character: share * P(c | shorter context)
        for pos, n in zip(self.positions(followers), counts):  # the seen ones also get their own count
            logs[pos] = math.log(math.exp(parent_logs[pos]) * share + max(n - self.discount, 0.0) / total)
        self._logs[context] = logs
        return logs

    def save(self, path: Path) -> None:
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "order": self.order, "discount": self.discount,
               "vocabulary": self.vocabulary, "alpha": self.alpha, "beta": self.beta, "info": self.info,
               "counts": self.packed, "lexicon": self.lexicon.text if self.lexicon else "", "oov": self.oov}
        tmp = Path(path).with_name(Path(path).name + ".tmp")
        tmp.write_bytes(gzip.compress(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 9, mtime=0))
        tmp.replace(path)


def load_lm(path: Path) -> CharLM:
    """Read a language model file; a clear ModelError if it is missing, damaged or not one."""
    try:
        doc = json.loads(gzip.decompress(Path(path).read_bytes()))
    except FileNotFoundError:
        raise ModelError(f"{path}: language model not found", hint="use --decoder greedy, or --lm FILE") from None
    except (OSError, EOFError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable language model ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"{path}: not an ocrcli character language model")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{path}: language model format {doc['format_version']} is newer than this ocrcli reads")
    try:
        counts = doc["counts"]
        kind = str if int(doc.get("format_version", 0)) >= 2 else dict
        if not isinstance(counts, list) or not all(isinstance(level, kind) for level in counts):
            raise TypeError(f"counts must be a list of {'strings' if kind is str else 'tables'}")
        lexicon = doc.get("lexicon", "")
        if not isinstance(lexicon, str):
            raise TypeError("lexicon must be a string")
        lm = CharLM(int(doc["order"]), float(doc["discount"]), int(doc["vocabulary"]), counts,
                    float(doc.get("alpha", 0.3)), float(doc.get("beta", 0.3)), dict(doc.get("info", {})),
                    Lexicon.from_text(lexicon) if lexicon else None, float(doc.get("oov", 0.0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: damaged language model ({exc})") from None
    if len(counts) != lm.order:
        raise ModelError(f"{path}: damaged language model (order {lm.order}, {len(counts)} count tables)")
    return lm
