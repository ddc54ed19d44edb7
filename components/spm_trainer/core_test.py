"""Tests of SpmTrainer's pure logic: symbols, sentences, training, the vocabulary guarantee
(with the model helpers of model_proto.py and the statistics of summary.py)."""
import collections
import io
import random

import pytest
import sentencepiece as spm

from components.spm_trainer import core, model_proto, summary as spm_summary
from models.sid import symbols as sid_symbols

K, S = 16, 3  # codebook size, SID length


def _items_and_sentences(n_items=40, n_imps=3000, seed=0):
    """Items use codes < 8 at every level (codes 8..15 never appear: unseen symbols); item 0 is
    by far the most frequent."""
    rng = random.Random(seed)
    items = []
    while len(items) < n_items:
        codes = tuple(rng.randrange(8) for _ in range(S))
        if codes not in items:
            items.append(codes)
    sentences = [sid_symbols.sid_sentence(items[min(int(rng.expovariate(0.15)), n_items - 1)], K)
                 for _ in range(n_imps)]
    return items, sentences


@pytest.fixture(scope="module")
def data():
    items, sentences = _items_and_sentences()
    symbols = sid_symbols.all_symbols(S, K)
    model = core.train_spm(sentences, 80, symbols, seed=0)
    return items, sentences, symbols, model


def test_budget_rule():
    symbols = sid_symbols.all_symbols(S, K)
    _, sentences = _items_and_sentences()
    with pytest.raises(ValueError, match=f"at least {S * K + 1}"):
        core.train_spm(sentences, S * K, symbols)
    with pytest.raises(ValueError, match="too small"):
        core.check_vocab_size(10, S * K)
    # the smallest budget: one piece per symbol, nothing merged
    model = core.train_spm(sentences, S * K + 1, symbols)
    stats = spm_summary.model_stats(model, collections.Counter(sentences), symbols)
    assert stats[spm_summary.ACTUAL_VOCAB_SIZE] == S * K + 1
    assert stats[spm_summary.MEAN_PIECES_PER_SENTENCE] == S
    assert stats[spm_summary.MULTI_SYMBOL_PIECE_SHARE] == 0


def test_every_symbol_is_a_single_known_piece(data):
    _, sentences, symbols, model = data
    seen = set("".join(sentences))
    unseen = [s for s in symbols if s not in seen]
    assert len(unseen) >= S * 8  # codes 8..15 at every level never appear in training
    ids = model_proto.tokenize_sid_sentences(model, symbols)
    assert all(len(x) == 1 and x[0] != core.UNK_ID for x in ids)
    assert len({x[0] for x in ids}) == len(symbols)
    # a new item made of unseen codes keeps all its codes
    new_item = sid_symbols.sid_sentence((9, 12, 15), K)
    new_ids = model_proto.tokenize_sid_sentences(model, [new_item])[0]
    assert len(new_ids) == 3 and core.UNK_ID not in new_ids
    stats = spm_summary.model_stats(model, collections.Counter(sentences), symbols)
    assert stats[spm_summary.UNKNOWN_PIECE_SHARE_ON_UNSEEN_SYMBOLS] == 0
    assert stats[spm_summary.NUM_UNSEEN_SYMBOLS] == len(unseen)
    spm_summary.check_model(stats, len(symbols))


def test_without_the_symbol_sentences_unseen_symbols_are_unknown(data):
    """Why train_spm appends every symbol: guaranteeing only the seen ones leaves the others
    <unk>."""
    _, sentences, symbols, _ = data
    seen = sorted(set("".join(sentences)))
    model = core.train_spm(sentences, 80, seen)
    unseen = [s for s in symbols if s not in set(seen)]
    assert all(x == [core.UNK_ID] for x in model_proto.tokenize_sid_sentences(model, unseen))


def test_user_defined_symbols_never_merge():
    """Evidence for the choice: user_defined_symbols keep every symbol but block all merges."""
    _, sentences = _items_and_sentences()
    symbols = sid_symbols.all_symbols(S, K)
    w = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=w, model_type="bpe", vocab_size=80,
        user_defined_symbols=symbols, split_by_whitespace=False, character_coverage=1.0,
        hard_vocab_limit=False, normalization_rule_name="identity", add_dummy_prefix=False,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2)
    pieces = model_proto.vocab_pieces(w.getvalue())
    assert not [p for p in pieces if len(p) > 1 and p != core.UNK_PIECE]
    model = core.train_spm(sentences, 80, symbols, model_type="bpe")
    assert [p for p in model_proto.vocab_pieces(model) if len(p) > 1 and p != core.UNK_PIECE]


def test_frequent_runs_become_pieces(data):
    items, sentences, symbols, model = data
    counts = collections.Counter(sentences)
    top = counts.most_common(1)[0][0]
    assert top == sid_symbols.sid_sentence(items[0], K)
    # the popular SID: one piece
    assert len(model_proto.tokenize_sid_sentences(model, [top])[0]) == 1
    stats = spm_summary.model_stats(model, counts, symbols)
    assert stats[spm_summary.ACTUAL_VOCAB_SIZE] == 80
    assert stats[spm_summary.MEAN_PIECES_PER_SENTENCE] < 1.5
    assert stats[spm_summary.MULTI_SYMBOL_PIECE_SHARE] > 0.3
    assert stats[spm_summary.MAX_PIECE_SYMBOLS] == S
    # eval-only symbols are never inside a multi-symbol piece
    seen = set("".join(sentences))
    for piece in model_proto.vocab_pieces(model):
        if len(piece) > 1 and piece != core.UNK_PIECE:
            assert set(piece) <= seen
            levels = [lv for lv, _ in sid_symbols.piece_symbols(piece, K)]
            assert levels == list(range(levels[0], levels[0] + len(levels)))


def test_seed_pieces_make_unigram_merge(data):
    """sentencepiece 0.2.3's own unigram seed extraction finds no multi-symbol candidate in
    these multi-byte sentences; with core.seed_pieces it does (the tests above)."""
    _, sentences, _, _ = data
    seeds = core.seed_pieces(collections.Counter(sentences), 16)
    assert seeds and all(2 <= len(p) <= S for p, _ in seeds)
    assert seeds == sorted(seeds, key=lambda ps: (-ps[1], ps[0]))
    assert core.seed_pieces({"ab": 1}, 16) == []  # seen once: no seed
    assert core.seed_pieces({"abc": 2}, 2) == [("ab", 4), ("bc", 4)]


def test_pieces_detokenise_to_the_sentence(data):
    items, sentences, symbols, model = data
    probe = sorted(set(sentences))[:20] + [sid_symbols.sid_sentence((15, 0, 9), K)] + symbols[:5]
    ids = model_proto.tokenize_sid_sentences(model, probe)
    assert model_proto.detokenize(model, ids) == probe
    assert all(core.UNK_ID not in x for x in ids)


def test_training_is_deterministic_and_bpe_works(data):
    _, sentences, symbols, model = data
    assert core.train_spm(list(reversed(sentences)), 80, symbols, seed=0) == model
    assert b"seeds.tsv" not in model  # the temporary seed file's path is dropped
    assert core.train_spm(collections.Counter(sentences), 80, symbols, seed=0) == model
    bpe = core.train_spm(sentences, 80, symbols, model_type="bpe")
    stats = spm_summary.model_stats(bpe, collections.Counter(sentences), symbols)
    assert stats[spm_summary.ACTUAL_VOCAB_SIZE] == 80
    assert stats[spm_summary.UNKNOWN_PIECE_SHARE_ON_ALL_SYMBOLS] == 0
    with pytest.raises(ValueError, match="model_type"):
        core.train_spm(sentences, 80, symbols, model_type="word")


def test_model_prefix_writes_files(tmp_path, data):
    _, sentences, symbols, model = data
    prefix = str(tmp_path / "spm_80")
    assert core.train_spm(sentences, 80, symbols, model_prefix=prefix) == model
    assert (tmp_path / "spm_80.model").read_bytes() == model
    lines = (tmp_path / "spm_80.vocab").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 80 and lines[0].startswith(core.UNK_PIECE + "\t")


def test_bad_sentences_rejected():
    symbols = sid_symbols.all_symbols(S, K)
    with pytest.raises(ValueError, match="not symbols"):
        core.train_spm(["abc"], 80, symbols)
    with pytest.raises(ValueError, match="bad training sentence"):
        core.train_spm([""], 80, symbols)


def test_catalog_parsing():
    text = b"a\t0\t1-2-0\nb b\t1\t3-4-1\n"
    assert core.parse_catalog_tsv(text, 3) == {b"a": (1, 2, 0), b"b b": (3, 4, 1)}
    with pytest.raises(ValueError, match="sid_length"):
        core.parse_catalog_tsv(text, 4)
    with pytest.raises(ValueError, match="3 tab-separated"):
        core.parse_catalog_line(b"a\t1-2", 2)
    assert core.catalog_sentences({b"a": (1, 2)}, 4) == {b"a": sid_symbols.sid_sentence((1, 2), 4)}


def test_params():
    assert core.validate_params([1024, 512], "unigram", 0, 10) == [512, 1024]
    for bad in ([], [512, 512], [1.5], "512"):
        with pytest.raises(ValueError):
            core.validate_params(bad, "unigram", 0, 10)
    with pytest.raises(ValueError, match="model_type"):
        core.validate_params([512], "char", 0, 10)
    with pytest.raises(ValueError, match="max_sentences"):
        core.validate_params([512], "bpe", 0, 0)


def test_sample_counts_keeps_every_impression_up_to_max_sentences():
    counts = {"a": 5, "b": 3, "c": 0}
    assert core.sample_counts(counts, 8, seed=1) == {"a": 5, "b": 3}


def test_sample_counts_draws_a_seeded_sample_without_replacement():
    counts = {f"s{i}": 10 * (i + 1) for i in range(20)}  # 2,100 impressions
    sample = core.sample_counts(counts, 500, seed=3)
    assert sum(sample.values()) == 500
    assert all(0 < c <= counts[s] for s, c in sample.items())
    assert sample == core.sample_counts(dict(reversed(list(counts.items()))), 500, seed=3)
    assert sample != core.sample_counts(counts, 500, seed=4)
