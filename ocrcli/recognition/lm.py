"""A character n-gram language model for CTC beam search: interpolated absolute discounting.

P(c | h) = max(n(h c) - D, 0) / n(h) + D * t(h) / n(h) * P(c | h shortened by one character),
where n(h) counts characters seen after the context h, t(h) the distinct ones, down to a uniform
distribution over the alphabet. Lines start with BOS context and end with EOS. The counts are the
file's: ``ocr train-lm`` stores continuation counts for the shorter contexts by default, which
makes this interpolated Kneser-Ney (``ocrcli.train.charlm.build_charlm``).

The file is gzip-compressed JSON (no pickle): ``{"format": "ocrcli-charlm", "format_version": 2,
"order", "discount", "vocabulary", "alpha", "beta", "info", "counts"}`` where ``counts[n]`` is one
string for the contexts of n characters, a line each: ``"<context>\t<following characters>\t<their
counts, comma-separated>"`` (a few long strings: the file parses in a fifth of the time of one
string per context, and the C beam search reads them without building Python tables). Format 1,
where ``counts[n]`` maps each context to ``"<following characters>\t<counts>"``, still loads.
``ocr train-lm`` writes it.
"""
from __future__ import annotations

import gzip
import json
import math
from array import array
from pathlib import Path

import numpy as np

from ocrcli.errors import ModelError

FORMAT = "ocrcli-charlm"
FORMAT_VERSION = 2
BOS, EOS = "\x02", "\x03"
CACHE_CONTEXTS = 12_000  # distributions kept (1.6 KB each): about 20 MB at most


class CharLM:
    """The model: ``counts[n][context] = "following characters<TAB>their counts, comma-separated"``,
    given as those tables or packed as in the file (one string per n; unpacked on first use)."""

    def __init__(self, order: int, discount: float, vocabulary: int, counts: list, alpha: float = 0.3,
                 beta: float = 0.3, info: dict | None = None) -> None:
        self.order = order
        self.discount = discount
        self.vocabulary = vocabulary  # alphabet size + EOS: the uniform floor
        self.alpha = alpha  # LM weight in beam search (tuned for the model named in info)
        self.beta = beta  # bonus per emitted character, against the LM's preference for short text
        self.info = info if info is not None else {}
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
               "counts": self.packed}
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
        lm = CharLM(int(doc["order"]), float(doc["discount"]), int(doc["vocabulary"]), counts,
                    float(doc.get("alpha", 0.3)), float(doc.get("beta", 0.3)), dict(doc.get("info", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: damaged language model ({exc})") from None
    if len(counts) != lm.order:
        raise ModelError(f"{path}: damaged language model (order {lm.order}, {len(counts)} count tables)")
    return lm
