"""The character language model and CTC beam search of --decoder beam."""

import gzip
import json
import math
import os

import numpy as np
import pytest

from PIL import Image
from typer.testing import CliRunner

from conftest import FIXTURE_LINES, ROOT, render_line
from ocrcli.cli import app
from ocrcli.errors import ModelError
from ocrcli.recognition.decode import beam_decode, greedy_decode, search_python
from ocrcli.recognition.lm import BOS, EOS, Lexicon, load_lm, words_of
from ocrcli.train.charlm import build_charlm, tune_weights

ALPHABET = "abehlo "
TEXTS = ["hello", "hello hello", "he hole", "hello bob", "a bee"]


def run_ocr(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _lm(**kw):
    return build_charlm(TEXTS, order=4, vocabulary=len(ALPHABET) + 1, **kw)


def test_probabilities_sum_to_one_in_every_context():
    lm = _lm()
    for history in (lm.start(), lm.start() + "he", lm.start() + "hel", lm.start() + "zzz"):
        total = sum(math.exp(lm.logp(history, ch)) for ch in ALPHABET + EOS)
        assert total == pytest.approx(1.0, abs=1e-9)
    seen, unseen = lm.logp(lm.start() + "hel", "l"), lm.logp(lm.start() + "hel", "a")
    assert seen > unseen


def test_saved_model_loads_with_the_same_probabilities(tmp_path):
    lm = _lm(min_count=1)
    lm.alpha, lm.beta = 0.5, 1.25
    lm.save(tmp_path / "lm.json.gz")
    again = load_lm(tmp_path / "lm.json.gz")
    assert (again.order, again.alpha, again.beta) == (4, 0.5, 1.25)
    for history in (lm.start() + "hel", lm.start() + "a b"):
        for ch in ALPHABET + EOS:
            assert again.logp(history, ch) == pytest.approx(lm.logp(history, ch))


def test_distribution_cache_is_bounded_and_keeps_answers(monkeypatch):
    import ocrcli.recognition.lm as lm_module

    lm = _lm(min_count=1)
    histories = [lm.start() + a + b + c for a in ALPHABET for b in ALPHABET for c in ALPHABET]
    expected = {h: lm.logp(h, "l") for h in histories}  # unbounded enough: 343 contexts
    monkeypatch.setattr(lm_module, "CACHE_CONTEXTS", 40)
    small = _lm(min_count=1)
    for _ in range(2):
        for h in histories:
            assert small.logp(h, "l") == pytest.approx(expected[h])
            assert len(small._logs) + len(small._older) <= 40


def test_min_count_leaves_out_rare_long_contexts():
    full, pruned = _lm(min_count=1), _lm(min_count=3)
    assert len(pruned.counts[3]) < len(full.counts[3])
    assert pruned.counts[1] == full.counts[1]  # short contexts are always kept


def test_kneser_ney_counts_in_how_many_contexts_a_character_follows():
    # "b" is seen 3 times but after only 2 distinct characters; "a" only at line starts (after BOS)
    texts = ["ab", "cb", "ab"]
    plain = build_charlm(texts, order=2, vocabulary=4, smoothing="absolute").counts[0][""]
    kn = build_charlm(texts, order=2, vocabulary=4).counts[0][""]
    as_dict = lambda entry: dict(zip(entry.split("\t")[0], map(int, entry.split("\t")[1].split(","))))
    assert as_dict(plain) == {"a": 2, "b": 3, "c": 1, EOS: 3}
    assert as_dict(kn) == {"a": 1, "b": 2, "c": 1, EOS: 1}
    longest = build_charlm(texts, order=2, vocabulary=4).counts[1]
    assert longest == build_charlm(texts, order=2, vocabulary=4, smoothing="absolute").counts[1]  # plain counts
    with pytest.raises(ValueError, match="smoothing"):
        build_charlm(texts, order=2, smoothing="witten-bell")


def test_bad_language_model_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_lm(tmp_path / "missing.json.gz")
    (tmp_path / "junk.json.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ModelError, match="not a readable"):
        load_lm(tmp_path / "junk.json.gz")
    (tmp_path / "other.json.gz").write_bytes(gzip.compress(json.dumps({"format": "something-else"}).encode()))
    with pytest.raises(ModelError, match="not an ocrcli"):
        load_lm(tmp_path / "other.json.gz")
    (tmp_path / "cut.json.gz").write_bytes(gzip.compress(json.dumps({"format": "ocrcli-charlm", "order": 4}).encode()))
    with pytest.raises(ModelError, match="damaged"):
        load_lm(tmp_path / "cut.json.gz")


def _frames(*columns):
    """(T, C) log-probabilities from per-frame {char: prob} dicts; the rest of each frame is blank."""
    out = np.full((len(columns), len(ALPHABET) + 1), 1e-6)
    for t, probs in enumerate(columns):
        for ch, p in probs.items():
            out[t, ALPHABET.index(ch) + 1] = p
        out[t, 0] = max(1e-6, 1.0 - sum(probs.values()))
    return np.log(out / out.sum(axis=1, keepdims=True))


def test_beam_search_uses_the_language_model_where_the_network_hesitates():
    lp = _frames({"h": 0.9}, {}, {"a": 0.5, "e": 0.4}, {}, {"l": 0.9}, {}, {"l": 0.9}, {}, {"o": 0.9})
    labels = greedy_decode(lp).labels
    assert "".join(ALPHABET[k - 1] for k in labels) == "hallo"
    lm = _lm()
    lm.alpha, lm.beta = 0.5, 0.5
    decoded = beam_decode(lp, ALPHABET, lm, width=8, prune=-12.0)
    assert "".join(ALPHABET[k - 1] for k in decoded.labels) == "hello"
    assert decoded.frames == [0, 2, 4, 6, 8]  # where each character was emitted
    assert all(0 < p <= 1 for p in decoded.probs)


def test_beam_search_keeps_what_the_network_is_sure_of():
    """Double letters need a blank between them; confident frames win over the LM."""
    lm = _lm()
    lm.alpha, lm.beta = 0.5, 0.5
    lp = _frames({"b": 0.99}, {"o": 0.99}, {"o": 0.99}, {}, {"b": 0.99})
    assert "".join(ALPHABET[k - 1] for k in beam_decode(lp, ALPHABET, lm).labels) == "bob"
    lp = _frames({"b": 0.99}, {"e": 0.99}, {}, {"e": 0.99})
    assert "".join(ALPHABET[k - 1] for k in beam_decode(lp, ALPHABET, lm).labels) == "bee"
    assert beam_decode(_frames({}, {}), ALPHABET, lm).labels == []


def test_shipped_language_model_loads():
    lm = load_lm(ROOT / "models" / "ocrcli-charlm-v1.json.gz")
    assert lm.order >= 3 and lm.alpha > 0
    assert lm.logp(lm.start() + "the", " ") > lm.logp(lm.start() + "the", "Q")


def test_cli_decoders_and_language_model_options(tmp_path):
    line = tmp_path / "line.png"
    Image.fromarray(render_line("Dear Anna, thank you")).save(line)
    beam = run_ocr("recognize", "--layout", "line", "--stdout", "-q", "--device", "cpu", line)
    greedy = run_ocr("recognize", "--layout", "line", "--stdout", "-q", "--device", "cpu", "--decoder", "greedy", line)
    assert beam.exit_code == 0 and greedy.exit_code == 0 and beam.output.strip() and greedy.output.strip()
    missing = run_ocr("recognize", "--layout", "line", "--stdout", "--device", "cpu", "--lm", tmp_path / "none.json.gz", line)
    assert missing.exit_code == 4 and "language model not found" in missing.output
    misuse = run_ocr("recognize", "--stdout", "--decoder", "greedy", "--lm", tmp_path / "x", line)
    assert misuse.exit_code == 2


def test_train_lm_builds_a_model_that_eval_uses(tmp_path):
    out = tmp_path / "lm.json.gz"
    built = run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "5", "--out", out)
    assert built.exit_code == 0, built.output
    assert load_lm(out).order == 5
    report = run_ocr("eval", FIXTURE_LINES, "--limit", "20", "--device", "cpu", "--lm", out)
    assert report.exit_code == 0, report.output
    assert "beam decoding" in report.output
    plain = tmp_path / "plain.json.gz"
    built = run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "5", "--smoothing", "absolute", "--discount", "0.6", "--out", plain)
    assert built.exit_code == 0, built.output
    assert (load_lm(plain).info["smoothing"], load_lm(plain).discount) == ("absolute", 0.6)
    assert load_lm(plain).counts[4] == load_lm(out).counts[4] and load_lm(plain).counts[1] != load_lm(out).counts[1]
    refused = run_ocr("train-lm", "--train", FIXTURE_LINES, "--smoothing", "good-turing", "--out", tmp_path / "x.json.gz")
    assert refused.exit_code == 2 and "--smoothing" in refused.output and not (tmp_path / "x.json.gz").exists()


def test_train_lm_can_add_generated_english_lines(tmp_path):
    plain, mixed = tmp_path / "plain.json.gz", tmp_path / "mixed.json.gz"
    assert run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "4", "--out", plain).exit_code == 0
    built = run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "4", "--synthetic-lines", "300", "--out", mixed)
    assert built.exit_code == 0, built.output
    a, b = load_lm(plain), load_lm(mixed)
    assert b.info["synthetic_lines"] == 300 and b.info["lines"] == a.info["lines"] + 300
    assert sum(map(len, b.counts)) > sum(map(len, a.counts))  # their n-grams are counted


def _c_search():
    """The C beam search extension; skipped where it was not built (no C compiler at install),
    a failure in CI, where `make setup` builds it."""
    try:
        from ocrcli.recognition import _ctcbeam
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("the C beam search (ocrcli/recognition/_ctcbeam.c) was not built by pip install")
        pytest.skip("the C beam search extension is not built here (the Python search runs instead)")
    return _ctcbeam


def test_c_search_reads_the_python_language_model_probabilities_exactly():
    ctcbeam = _c_search()
    lm, python = _lm(), _lm()
    python._compiled = False  # this one answers from CharLM._dist
    compiled = lm.compiled()
    assert compiled is not None and python.compiled() is None
    for text in ("", "hel", "a b", "hello bob", "eeee", "ob"):
        history = lm.start() + text
        context = history[len(history) - lm.order + 1:]
        codes = [255 if ch == BOS else lm.positions(ch)[0] for ch in context]  # 255: BOS, which only pads
        dist = ctcbeam.log_dist(compiled, codes)
        for ch in ALPHABET + EOS:
            assert dist[lm.positions(ch)[0]] == python.logp(history, ch)  # the same double, not just close


def _random_frames(rng, frames: int) -> np.ndarray:
    logits = rng.normal(0.0, 3.0, (frames, len(ALPHABET) + 1))
    logits[:, 0] += rng.uniform(0.0, 6.0)  # blanks dominate many frames, as in real lines
    logits -= logits.max(axis=1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("words", [False, True])
def test_c_and_python_searches_find_the_same_text_and_frames(seed, words):
    """With and without a lexicon (a charge for every word outside TEXTS' words)."""
    _c_search()
    rng = np.random.default_rng(seed)
    lp = _random_frames(rng, int(rng.integers(1, 80)))
    lm, python = _lm(), _lm()
    python._compiled = False
    lm.alpha = python.alpha = float(rng.uniform(0.1, 1.0))
    lm.beta = python.beta = float(rng.uniform(0.0, 2.0))
    if words:
        lm.lexicon, python.lexicon = Lexicon(TEXTS), Lexicon(TEXTS)
        lm.oov = python.oov = float(rng.uniform(-6.0, -0.5))
    for width, prune in ((1, -2.0), (4, -4.0), (16, -9.0)):
        fast, slow = beam_decode(lp, ALPHABET, lm, width, prune), beam_decode(lp, ALPHABET, python, width, prune)
        assert (fast.labels, fast.frames, fast.probs, fast.score) == (slow.labels, slow.frames, slow.probs, slow.score)


def test_c_and_python_searches_agree_on_real_lines():
    """The shipped model's outputs for 40 fixture lines, with the shipped language model."""
    _c_search()
    import cv2

    from ocrcli.recognition.engine import Recognizer
    from ocrcli.train.data import read_tsv

    recognizer = Recognizer(device="cpu")
    rows = read_tsv(FIXTURE_LINES)[::9][:40]
    outputs = recognizer.log_probs([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _, _ in rows])
    alphabet, lm = recognizer.charset.alphabet, recognizer.lm
    assert lm.compiled() is not None
    python = load_lm(ROOT / "models" / "ocrcli-charlm-v1.json.gz")
    python._compiled = False
    for lp in outputs:
        fast, slow = beam_decode(lp, alphabet, lm), beam_decode(lp, alphabet, python)
        assert (fast.labels, fast.frames, fast.probs, fast.score) == (slow.labels, slow.frames, slow.probs, slow.score)


def test_c_searches_in_parallel_threads_find_what_one_thread_finds():
    """The C search releases the GIL and each concurrent search has a memo of its own: 8 threads
    (more than the LM's 4 memos, so some searches get a fresh one) read what one thread reads, and
    a Recognizer with 2 torch threads decodes its lines side by side with the same texts."""
    _c_search()
    from concurrent.futures import ThreadPoolExecutor

    import cv2
    import torch

    from ocrcli.recognition.engine import Recognizer
    from ocrcli.train.data import read_tsv

    rng = np.random.default_rng(7)
    lm = _lm()
    lm.alpha, lm.beta = 0.6, 0.8
    lines = [_random_frames(rng, int(rng.integers(1, 120))) for _ in range(64)]

    def read(lp):
        return beam_decode(lp, ALPHABET, lm, 16, -9.0)

    alone = [read(lp) for lp in lines]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(read, lines * 3))
    assert together == alone * 3

    crops = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _, _ in read_tsv(FIXTURE_LINES)[::20][:16]]
    recognizer, threads = Recognizer(device="cpu"), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = recognizer.recognize(crops)
        torch.set_num_threads(2)
        assert recognizer._search_pool() is not None
        assert recognizer.recognize(crops) == serial
    finally:
        torch.set_num_threads(threads)


def test_one_call_can_decode_greedily_and_every_reading_has_its_best_path_confidence():
    """A beam recognizer asked for greedy decoding reads as a greedy recognizer does, and each line's
    path_confidence is the greedy reading's confidence whichever decoder gave its text."""
    import cv2

    from ocrcli.recognition.engine import Recognizer
    from ocrcli.train.data import read_tsv

    beam, greedy = Recognizer(device="cpu"), Recognizer(device="cpu", decoder="greedy")
    crops = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _, _ in read_tsv(FIXTURE_LINES)[::25][:12]]
    by_beam, asked_greedy, by_greedy = beam.recognize(crops), beam.recognize(crops, decoder="greedy"), greedy.recognize(crops)
    assert [t.text for t in asked_greedy] == [t.text for t in by_greedy]
    assert [t.path_confidence for t in by_beam] == [t.confidence for t in by_greedy] == [t.path_confidence for t in by_greedy]
    assert [t.text for t in by_beam] != [t.text for t in by_greedy]  # the language model changes some lines
    assert any(a.confidence != a.path_confidence for a in by_beam)
    with pytest.raises(ValueError, match="decoder"):
        beam.recognize(crops, decoder="bogus")
    with pytest.raises(ValueError, match="language model"):
        greedy.recognize(crops, decoder="beam")


def test_python_search_runs_where_the_extension_is_missing():
    lm = _lm()
    lm._compiled = False
    lm.alpha, lm.beta = 0.5, 0.5
    lp = _frames({"h": 0.9}, {}, {"a": 0.5, "e": 0.4}, {}, {"l": 0.9}, {}, {"l": 0.9}, {}, {"o": 0.9})
    labels, starts, score = search_python(lp, ALPHABET, lm, 8, -12.0)
    assert "".join(ALPHABET[k - 1] for k in labels) == "hello" and starts == [0, 2, 4, 6, 8]
    decoded = beam_decode(lp, ALPHABET, lm, width=8, prune=-12.0)
    assert decoded.labels == labels and decoded.score == score


def test_lexicon_words_are_runs_of_letters_case_folded():
    assert words_of("Aujourd'hui, 12 MAI 1880: Été-Œuvre") == ["aujourd", "hui", "mai", "été", "œuvre"]
    lexicon = Lexicon(["Hello world", "hole", "hello"])
    assert len(lexicon) == 3 and lexicon.text == "hello\nhole\nworld"
    assert [lexicon.state(w) for w in ("hello", "hel", "h", "hx", "hellos", "")] == [
        Lexicon.WORD, Lexicon.BEGINNING, Lexicon.BEGINNING, Lexicon.NOT_A_BEGINNING, Lexicon.NOT_A_BEGINNING, Lexicon.BEGINNING]
    assert Lexicon.from_text(lexicon.text).state("world") == Lexicon.WORD


@pytest.mark.parametrize("c_search", [False, True])
def test_beam_search_charges_words_outside_the_lexicon(c_search):
    """The network prefers "hallo" and the character model hardly weighs in; with a lexicon that
    holds "hello" (any case) the reading becomes "hello"; with both words the network decides."""
    if c_search:
        _c_search()
    lp = _frames({"h": 0.9}, {}, {"a": 0.55, "e": 0.35}, {}, {"l": 0.9}, {}, {"l": 0.9}, {}, {"o": 0.9})
    lm = _lm()
    if not c_search:
        lm._compiled = False
    lm.alpha, lm.beta = 0.01, 0.0
    read = lambda: "".join(ALPHABET[k - 1] for k in beam_decode(lp, ALPHABET, lm, width=8, prune=-12.0).labels)
    assert read() == "hallo"
    lm.lexicon = Lexicon(["HELLO", "bob"])
    assert read() == "hallo"  # no charge set: the lexicon is not used
    lm.oov = -3.0
    assert read() == "hello"
    lm.lexicon = Lexicon(["hallo", "hello"])
    assert read() == "hallo"  # both words: the network decides


def test_tune_weights_picks_the_charge_for_words_outside_the_lexicon():
    lp = _frames({"h": 0.9}, {}, {"a": 0.55, "e": 0.35}, {}, {"l": 0.9}, {}, {"l": 0.9}, {}, {"o": 0.9})
    lm = _lm()
    lm.lexicon = Lexicon(["hello"])
    results = tune_weights(lm, [lp, None], ["hello", "bob"], ALPHABET, alphas=(0.01,), betas=(0.0,), threads=2)
    assert len(results) == 6 and results[0][0] < results[-1][0]
    assert (lm.alpha, lm.beta) == (0.01, 0.0) and lm.oov == results[0][3] < 0.0
    plain = _lm()
    assert [r[3] for r in tune_weights(plain, [lp], ["hello"], ALPHABET, alphas=(0.5,), betas=(1.0,))] == [0.0]


def test_lexicon_is_saved_with_its_charge(tmp_path):
    lm = _lm()
    lm.lexicon, lm.oov = Lexicon(["hello", "bob"]), -2.5
    lm.save(tmp_path / "lm.json.gz")
    again = load_lm(tmp_path / "lm.json.gz")
    assert again.lexicon.text == "bob\nhello" and again.oov == -2.5 and again.checks_words
    doc = json.loads(gzip.decompress((tmp_path / "lm.json.gz").read_bytes()))
    assert doc["format_version"] == 3
    del doc["lexicon"], doc["oov"]  # format 2: no lexicon
    doc["format_version"] = 2
    (tmp_path / "v2.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
    older = load_lm(tmp_path / "v2.json.gz")
    assert older.lexicon is None and older.oov == 0.0 and not older.checks_words
    doc["lexicon"] = ["bob"]
    (tmp_path / "bad.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(ModelError, match="lexicon"):
        load_lm(tmp_path / "bad.json.gz")


def test_train_lm_builds_a_lexicon_from_its_lines_and_word_lists(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("Zythum\nquaffing, λόγος\n", encoding="utf-8")
    out = tmp_path / "lm.json.gz"
    built = run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "4", "--lexicon", words,
                    "--wordfreq-words", "50", "--wordfreq-language", "en", "--out", out)
    assert built.exit_code == 0, built.output
    lm = load_lm(out)
    first = read_first_fixture_words()
    assert lm.checks_words and lm.info["wordfreq_words"] == 50
    assert all(lm.lexicon.state(w) == Lexicon.WORD for w in ("zythum", "quaffing", "the", *first))
    assert lm.lexicon.state("λόγος") == Lexicon.NOT_A_BEGINNING  # λ is not in the model's alphabet
    refused = run_ocr("train-lm", "--train", FIXTURE_LINES, "--wordfreq-words", "50", "--wordfreq-language", "xx",
                      "--out", tmp_path / "x.json.gz")
    assert refused.exit_code == 2 and "xx" in refused.output and not (tmp_path / "x.json.gz").exists()
    missing = run_ocr("train-lm", "--train", FIXTURE_LINES, "--lexicon", tmp_path / "none.txt", "--out", tmp_path / "x.json.gz")
    assert missing.exit_code == 2 and "none.txt" in missing.output


def test_no_lexicon_reads_with_the_language_model_alone(tmp_path):
    """--no-lexicon (Recognizer(lexicon=False)) decodes as the same language model with no charge for
    unknown words; it belongs to --decoder beam."""
    import cv2

    from ocrcli.recognition.engine import Recognizer
    from ocrcli.train.data import read_tsv

    with_words, without = Recognizer(device="cpu"), Recognizer(device="cpu", lexicon=False)
    assert with_words.lm.checks_words and not without.lm.checks_words
    rows = read_tsv(FIXTURE_LINES)[::10][:35]
    outputs = with_words.log_probs([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _, _ in rows])
    plain = load_lm(ROOT / "models" / "ocrcli-charlm-v1.json.gz")
    plain.oov = 0.0
    alphabet = with_words.charset.alphabet
    read = lambda lm: [beam_decode(lp, alphabet, lm).labels for lp in outputs]
    assert read(without.lm) == read(plain) != read(with_words.lm)
    line = tmp_path / "line.png"
    Image.fromarray(render_line("Dear Anna, thank you")).save(line)
    ok = run_ocr("recognize", "--layout", "line", "--stdout", "-q", "--device", "cpu", "--no-lexicon", line)
    assert ok.exit_code == 0 and ok.output.strip()
    misuse = run_ocr("recognize", "--layout", "line", "--stdout", "--decoder", "greedy", "--no-lexicon", line)
    assert misuse.exit_code == 2 and "--no-lexicon" in misuse.output
    report = run_ocr("eval", FIXTURE_LINES, "--limit", "10", "--device", "cpu", "--no-lexicon")
    assert report.exit_code == 0, report.output


def read_first_fixture_words():
    from ocrcli.train.data import read_tsv

    return words_of(read_tsv(FIXTURE_LINES)[0][1])


def test_c_search_refuses_damaged_counts():
    ctcbeam = _c_search()
    lm = _lm()
    lm.counts[2]["he"] = "lo\t3"  # two followers, one count
    with pytest.raises(ValueError, match="damaged"):
        ctcbeam.compile_lm(lm.packed, {}, lm.vocabulary, lm.discount, lm.order, BOS)
    for cut in ("he\tlo", "he", "h\tl\t1"):  # no counts, no followers, a short context
        with pytest.raises(ValueError, match="damaged"):
            ctcbeam.compile_lm(["\ta\t1", "a\tb\t1", cut, ""], {}, lm.vocabulary, lm.discount, lm.order, BOS)


def test_format_1_files_still_load(tmp_path):
    """Format 1 stored one string per context in a JSON object per context length."""
    lm = _lm()
    doc = {"format": "ocrcli-charlm", "format_version": 1, "order": lm.order, "discount": lm.discount,
           "vocabulary": lm.vocabulary, "alpha": 0.5, "beta": 1.0, "info": {}, "counts": lm.counts}
    (tmp_path / "old.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
    old = load_lm(tmp_path / "old.json.gz")
    for history in (lm.start() + "hel", lm.start() + "a b"):
        for ch in ALPHABET + EOS:
            assert old.logp(history, ch) == lm.logp(history, ch)
    lp = _frames({"h": 0.9}, {}, {"a": 0.5, "e": 0.4}, {}, {"l": 0.9}, {}, {"l": 0.9}, {}, {"o": 0.9})
    lm.alpha, lm.beta = 0.5, 1.0
    assert beam_decode(lp, ALPHABET, old).labels == beam_decode(lp, ALPHABET, lm).labels


def _wordnet_folder(folder, glosses):
    """WordNet 3.0 data files in their format: a licence header indented by two spaces, then one
    synset a line ending in '| gloss'."""
    folder.mkdir()
    for k, name in enumerate(("data.noun", "data.verb", "data.adj", "data.adv")):
        rows = ["  1 This software and database is being provided to you, the LICENSEE, by"]
        rows += [f"0000{k}{i:03d} 03 n 01 word 0 000 | {gloss}" for i, gloss in enumerate(glosses[k::4])]
        (folder / name).write_text("\n".join(rows) + "\n", encoding="latin-1")


def test_train_lm_can_add_wordnet_glosses(tmp_path):
    glosses = ['a young person of either sex; "she writes to her children every week"',
               "a written or printed message; short",
               'move fast by using one\'s feet; "Don\'t run--you\'ll be out of breath"',
               "the branch of biology that studies plants"]
    _wordnet_folder(tmp_path / "wn", glosses)
    from ocrcli.train.charlm import wordnet_glosses

    lines = wordnet_glosses(tmp_path / "wn")
    assert sorted(lines) == sorted(["a young person of either sex", "she writes to her children every week",
                                    "a written or printed message", "move fast by using one's feet",
                                    "Don't run--you'll be out of breath", "the branch of biology that studies plants"])
    assert wordnet_glosses(tmp_path / "wn", 3) == lines[:3]  # a fixed sample

    plain, mixed = tmp_path / "plain.json.gz", tmp_path / "mixed.json.gz"
    assert run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "4", "--min-count", "1", "--out", plain).exit_code == 0
    built = run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "4", "--min-count", "1", "--wordnet-lines", "6",
                    "--wordnet-dir", tmp_path / "wn", "--out", mixed)
    assert built.exit_code == 0, built.output
    a, b = load_lm(plain), load_lm(mixed)
    assert b.info["wordnet_lines"] == 6 and b.info["lines"] == a.info["lines"] + 6
    assert "udi" in b.counts[3] and "udi" not in a.counts[3]  # a context of "studies"

    missing = run_ocr("train-lm", "--train", FIXTURE_LINES, "--wordnet-lines", "4",
                      "--wordnet-dir", tmp_path / "nowhere", "--out", tmp_path / "x.json.gz")
    assert missing.exit_code == 2 and "wordnet-base" in missing.output
    assert not (tmp_path / "x.json.gz").exists()


def test_several_language_models_keep_the_reading_that_scores_best(tmp_path):
    """Recognizer(lm_path=[A, B]) searches each line with both and keeps the reading with the higher
    score (frames and language model); --set builds a model of one set's lines, --weights-from
    gives it another model's weights, so the two readings' scores compare."""
    import cv2

    from ocrcli.recognition.engine import Recognizer
    from ocrcli.train.data import read_tsv

    mixed, english = ROOT / "models" / "ocrcli-charlm-v1.json.gz", tmp_path / "en.json.gz"
    built = run_ocr("train-lm", "--train", FIXTURE_LINES, "--set", "hooker", "--order", "5", "--wordfreq-words", "2000",
                    "--wordfreq-language", "en", "--weights-from", mixed, "--out", english)
    assert built.exit_code == 0, built.output
    lm, shipped = load_lm(english), load_lm(mixed)
    assert lm.info["sets"] == ["hooker"] and lm.info["lines"] == sum(1 for *_, name in read_tsv(FIXTURE_LINES) if name == "hooker")
    assert (lm.alpha, lm.beta, lm.oov) == (shipped.alpha, shipped.beta, shipped.oov) and lm.info["weights_from"] == mixed.name
    both = Recognizer(device="cpu", lm_path=[mixed, english])
    assert len(both.lms) == 2 and both.lm is both.lms[0]
    rows = read_tsv(FIXTURE_LINES)[::7][:40]
    crops = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path, _, _ in rows]
    differ = 0
    for lp, read in zip(both.log_probs(crops), both.recognize(crops)):
        a, b = (beam_decode(lp, both.charset.alphabet, m) for m in both.lms)
        assert read.text == both.charset.decode((a if a.score >= b.score else b).labels)
        differ += a.labels != b.labels
    assert differ  # the two models read some lines differently
    report = run_ocr("eval", FIXTURE_LINES, "--limit", "10", "--device", "cpu", "--lm", mixed, "--lm", english)
    assert report.exit_code == 0, report.output
    refused = run_ocr("train-lm", "--train", FIXTURE_LINES, "--set", "nonesuch", "--out", tmp_path / "x.json.gz")
    assert refused.exit_code == 2 and "--set" in refused.output and not (tmp_path / "x.json.gz").exists()
    both_weights = run_ocr("train-lm", "--train", FIXTURE_LINES, "--weights-from", mixed, "--tune-on", FIXTURE_LINES,
                           "--out", tmp_path / "y.json.gz")
    assert both_weights.exit_code == 2 and not (tmp_path / "y.json.gz").exists()
    no_weights = run_ocr("train-lm", "--train", FIXTURE_LINES, "--weights-from", tmp_path / "none.json.gz",
                         "--out", tmp_path / "z.json.gz")
    assert no_weights.exit_code == 4 and "language model not found" in no_weights.output and not (tmp_path / "z.json.gz").exists()


def test_text_pieces_cut_prose_into_line_sized_pieces(tmp_path):
    from ocrcli.train.charlm import text_pieces

    words = [f"word{i}" for i in range(300)]
    (tmp_path / "a.txt").write_text(" ".join(words[:200]) + "\n\n" + " ".join(words[200:]) + "\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("✓ gone\nkept as Ünï\n", encoding="utf-8")
    (tmp_path / "skip.md").write_text("not a .txt file\n", encoding="utf-8")
    pieces = text_pieces([tmp_path], alphabet="abcdefghijklmnopqrstuvwxyzÜï0123456789")
    assert pieces == text_pieces([tmp_path / "a.txt", tmp_path / "b.txt"], alphabet="abcdefghijklmnopqrstuvwxyzÜï0123456789")
    assert sorted(w for p in pieces for w in p.split()) == sorted(words + ["kept", "as", "Ünï"])
    assert all(len(p) <= 60 for p in pieces) and sum(len(p) >= 20 for p in pieces) >= len(pieces) - 3
    assert text_pieces([tmp_path], limit=5) == text_pieces([tmp_path])[:5]
    built = run_ocr("train-lm", "--train", FIXTURE_LINES, "--order", "4", "--text", tmp_path, "--text-lines", "7",
                    "--out", tmp_path / "lm.json.gz")
    assert built.exit_code == 0, built.output
    assert load_lm(tmp_path / "lm.json.gz").info["lines"] == len(read_first_fixture_lines()) + 7
    missing = run_ocr("train-lm", "--train", FIXTURE_LINES, "--text", tmp_path / "none.txt", "--out", tmp_path / "x.json.gz")
    assert missing.exit_code == 2 and "--text" in missing.output


def read_first_fixture_lines():
    from ocrcli.train.data import read_tsv

    return read_tsv(FIXTURE_LINES)


def test_language_model_paths_from_the_environment(monkeypatch, tmp_path):
    from ocrcli.recognition.engine import DEFAULT_LM_NAMES, default_lm_paths, lm_paths

    monkeypatch.delenv("OCRCLI_LM", raising=False)
    assert [p.name for p in default_lm_paths()] == list(DEFAULT_LM_NAMES) and all(p.is_file() for p in default_lm_paths())
    monkeypatch.setenv("OCRCLI_LM", os.pathsep.join([str(tmp_path / "a.json.gz"), "", str(tmp_path / "b.json.gz")]))
    assert default_lm_paths() == [tmp_path / "a.json.gz", tmp_path / "b.json.gz"] == lm_paths(None) == lm_paths([])
    assert lm_paths(str(tmp_path / "c")) == [tmp_path / "c"] and lm_paths((tmp_path / "c",)) == [tmp_path / "c"]
