from ocrcli.metrics import ErrorCounter, confusions, edit_distance
from ocrcli.recognize.charset import DEFAULT_ALPHABET, Charset, normalize_text


def test_normalize_text_follows_data_conventions():
    assert normalize_text("l\u2019\u00e9t\u00e9 \u00ab oui \u00bb \u2013 fin\u2026") == "l'été \" oui \" - fin..."
    assert normalize_text("  a \t b\n c ") == "a b c"
    assert normalize_text("e\u0301") == "é"  # NFC
    assert normalize_text("x^2") == "x2"


def test_charset_covers_ascii_and_western_european_letters():
    cs = Charset(DEFAULT_ALPHABET)
    text = "Zoë, Ærøskøbing & Straße: 12,50 € (ça va?) œuvre Ñandú"
    assert cs.unknown(text) == set()
    assert cs.decode(cs.encode(text)) == text
    assert cs.num_classes == len(DEFAULT_ALPHABET) + 1


def test_charset_reports_unknown_characters():
    cs = Charset("abc ")
    assert cs.unknown("abz\u4e2d") == {"z", "\u4e2d"}
    try:
        cs.encode("abz")
    except KeyError as exc:
        assert "'z'" in str(exc)
    else:
        raise AssertionError("encode accepted an unknown character")


def test_error_rates():
    c = ErrorCounter()
    c.add("helo world", "hello world")
    c.add("abc", "abd")
    assert c.char_errors == 2 and c.chars == 14
    assert abs(c.cer - 2 / 14) < 1e-9
    assert c.word_errors == 2 and c.words == 3
    assert edit_distance("kitten", "sitting") == 3


def test_confusions_name_the_characters():
    counts = confusions("hallo", "hello")
    assert counts[("e", "a")] == 1
    assert sum(counts.values()) == 1
