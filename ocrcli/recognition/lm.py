"""A character n-gram language model for CTC beam search: interpolated absolute discounting.

P(c | h) = max(n(h c) - D, 0) / n(h) + D * t(h) / n(h) * P(c | h shortened by one character),
where n(h) counts characters seen after the context h, t(h) the distinct ones, down to a uniform
distribution over the alphabet. Lines start with BOS context and end with EOS.

The file is gzip-compressed JSON (no pickle): ``{"format": "ocrcli-charlm", "format_version": 1,
"order", "discount", "vocabulary", "alpha", "beta", "info", "counts"}`` where ``counts[n]`` maps each
context of n characters to ``"<following characters>\t<their counts, comma-separated>"`` (one string
per context: the file loads in a third of the time of nested lists). ``ocr train-lm`` writes it.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ocrcli.errors import ModelError

FORMAT = "ocrcli-charlm"
FORMAT_VERSION = 1
BOS, EOS = "\x02", "\x03"
CACHE_CONTEXTS = 12_000  # distributions kept (1.6 KB each): about 20 MB at most


@dataclass
class CharLM:
    order: int
    discount: float
    vocabulary: int  # alphabet size + EOS: the uniform floor
    counts: list[dict[str, str]]  # counts[n][context] = "following characters<TAB>their counts, comma-separated"
    alpha: float = 0.3  # LM weight in beam search (tuned for the model named in info)
    beta: float = 0.3  # bonus per emitted character, against the LM's preference for short text
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index: dict[str, int] = {}  # character -> position in the distributions
        self._probs: dict[str, np.ndarray] = {}  # context -> P(. | context), bounded by CACHE_CONTEXTS

    def logp(self, history: str, char: str) -> float:
        """log P(char | the last order-1 characters of history); history starts with BOS padding."""
        i = self._index.get(char)
        if i is None:
            i = self._index[char] = len(self._index)
            if i >= self.vocabulary:
                raise ValueError(f"more distinct characters than the model's vocabulary ({self.vocabulary})")
        if len(self._probs) > CACHE_CONTEXTS:  # bounded memory over a long batch: start afresh
            self._probs.clear()
        return math.log(self._dist(history[len(history) - self.order + 1:])[i])

    def start(self) -> str:
        return BOS * (self.order - 1)

    def _dist(self, context: str) -> np.ndarray:
        # P(. | h) from P(. | h without its first character); an unseen context backs off entirely.
        cached = self._probs.get(context)
        if cached is not None:
            return cached
        if context:
            parent = self._dist(context[1:])
        else:
            parent = np.full(self.vocabulary, 1.0 / self.vocabulary)
        entry = self.counts[len(context)].get(context) if len(context) < len(self.counts) else None
        if entry is None:
            self._probs[context] = parent
            return parent
        followers, _, numbers = entry.partition("\t")
        counts = np.array(numbers.split(","), np.float64)
        if len(counts) != len(followers):
            raise ValueError(f"damaged language model: context {context!r} has {len(followers)} characters and {len(counts)} counts")
        total = counts.sum()
        dist = parent * (self.discount * len(followers) / total)
        index = self._index
        for ch in followers:
            if ch not in index:
                index[ch] = len(index)
        if len(index) > self.vocabulary:
            raise ValueError(f"more distinct characters than the model's vocabulary ({self.vocabulary})")
        dist[[index[ch] for ch in followers]] += np.maximum(counts - self.discount, 0.0) / total
        self._probs[context] = dist
        return dist

    def save(self, path: Path) -> None:
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "order": self.order, "discount": self.discount,
               "vocabulary": self.vocabulary, "alpha": self.alpha, "beta": self.beta, "info": self.info,
               "counts": self.counts}
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
        if not isinstance(counts, list) or not all(isinstance(level, dict) for level in counts):
            raise TypeError("counts must be a list of tables")
        lm = CharLM(int(doc["order"]), float(doc["discount"]), int(doc["vocabulary"]), counts,
                    float(doc.get("alpha", 0.3)), float(doc.get("beta", 0.3)), dict(doc.get("info", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: damaged language model ({exc})") from None
    if len(lm.counts) != lm.order:
        raise ModelError(f"{path}: damaged language model (order {lm.order}, {len(lm.counts)} count tables)")
    return lm
