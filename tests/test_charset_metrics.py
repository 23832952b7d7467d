from ocrcli.metrics import ErrorCounter, confusions, edit_distance
from ocrcli.recognition.charset import DEFAULT_ALPHABET, Charset, normalize_text


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


def test_split_words_places_words_from_character_positions():
    from ocrcli.recognition.decode import split_words

    text = "ab  cd"
    xs = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    words = split_words(text, xs, [0.9, 0.9, 0.5, 0.5, 0.4, 1.0])
    assert [w.text for w in words] == ["ab", "cd"]
    assert words[0].x0 == 5.0 and words[0].x1 == 25.0
    assert words[1].x0 == 45.0 and words[1].x1 == 65.0
    assert abs(words[1].confidence - (0.4 * 1.0) ** 0.5) < 1e-9
    assert split_words("", [], []) == []
