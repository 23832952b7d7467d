"""The character set the recognizer can emit, and the text normalisation it was trained with."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Printable ASCII, the accented letters of Western European languages and a few signs seen in the
# training transcriptions. Index 0 of the network output is the CTC blank, so characters start at 1.
_ASCII = "".join(chr(c) for c in range(32, 127))
_LATIN = (
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿ"
    "ŒœŸŠšŽžĆćĈĉĤĥĴĵŜŝŬŭȼ"
)
_SIGNS = "¡¿£¥€°§©®±×÷µ¶·½¼¾πΩ∞→⋎"
DEFAULT_ALPHABET = _ASCII + _LATIN + _SIGNS

_ASCII_MAP = {
    "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...",
}


def normalize_text(text: str) -> str:
    """Apply the transcription conventions of the training data (shared/data/DATA.md).

    NFC, typographic quotes and dashes to ASCII, whitespace collapsed to single spaces.
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(_ASCII_MAP.get(ch, ch) for ch in text)
    text = text.replace("^", "")
    return " ".join(text.split())


@dataclass(frozen=True)
class Charset:
    """Maps characters to CTC class indices (0 is the blank) and back."""

    alphabet: str

    def __post_init__(self) -> None:
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("alphabet has repeated characters")

    @property
    def num_classes(self) -> int:
        return len(self.alphabet) + 1

    def unknown(self, text: str) -> set[str]:
        """Characters of ``text`` the charset cannot encode."""
        return {ch for ch in text if ch not in self._index}

    def encode(self, text: str) -> list[int]:
        """Class indices of ``text``; raises KeyError naming the first unknown character."""
        index = self._index
        try:
            return [index[ch] for ch in text]
        except KeyError as exc:
            raise KeyError(f"character {exc.args[0]!r} is not in the charset") from None

    def decode(self, indices: list[int]) -> str:
        return "".join(self.alphabet[i - 1] for i in indices if i > 0)

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {ch: i + 1 for i, ch in enumerate(self.alphabet)}
            object.__setattr__(self, "_index_cache", cached)
        return cached
