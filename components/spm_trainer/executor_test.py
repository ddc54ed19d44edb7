"""Runs the SpmTrainer executor (DirectRunner) on a tiny hand-made Examples artifact with the
train / validation / eval splits and a tiny ItemCatalog; plus the component's wiring."""
import json
import os
import random

import pytest
import tensorflow as tf
from tfx.types import channel_utils, standard_artifacts

from components.artifacts import ItemCatalog, SpmModels
from components.semantic_id_gen import core as sid_core
from components.spm_trainer import core, model_proto, summary as spm_summary
from components.spm_trainer.component import SpmTrainer
from components.spm_trainer.executor import Executor
from components.testing import write_examples_artifact
from models.sid import symbols as sid_symbols
from schemas import features

L, K = 2, 8  # RQ-VAE levels, codebook size; SIDs have L + 1 codes (breaker on)
S = L + 1
NUM_TRAIN_ITEMS = 12


def _catalog_items():
    """Train items use level-0 codes 0..3; eval-only items use level-0 codes 6 and 7 and
    level-1 code 7: symbols that appear nowhere in train."""
    rng = random.Random(0)
    train = {}
    while len(train) < NUM_TRAIN_ITEMS:
        codes = (rng.randrange(4), rng.randrange(6), 0)
        if codes not in train.values():  # distinct SIDs
            train[f"t{len(train)}"] = codes
    eval_only = {"e0": (6, 7, 0), "e1": (7, 7, 1), "e2": (7, 7, 0)}
    return train, eval_only


def _write_catalog(uri, items, max_breaker_code=1):
    os.makedirs(uri)
    ids = sorted(i.encode() for i in items)
    with open(os.path.join(uri, ItemCatalog.CATALOG_TSV), "wb") as f:
        f.write(sid_core.catalog_tsv(ids, [items[i.decode()] for i in ids]))
    meta = {sid_core.NUM_ITEMS: len(items), sid_core.NUM_LEVELS: L, sid_core.SID_LENGTH: S,
            sid_core.CODEBOOK_SIZE: K, sid_core.EMBEDDING_DIM: 4,
            sid_core.COLLISION_BREAKER: True, sid_core.MAX_BREAKER_CODE: max_breaker_code}
    with open(os.path.join(uri, ItemCatalog.METADATA_JSON), "w") as f:
        json.dump(meta, f)
    art = ItemCatalog()
    art.uri = uri
    return art


def _example(user, item):
    ex = tf.train.Example()
    f = ex.features.feature
    f[features.USER_ID].bytes_list.value.append(user.encode())
    f[features.ITEM_ID].bytes_list.value.append(item.encode())
    f[features.TIMESTAMP].int64_list.value.append(0)
    f[features.LABEL].int64_list.value.append(1)
    return ex.SerializeToString()


def _write_examples(uri, rows_by_split):
    return write_examples_artifact(uri, {
        split: [_example(f"u{i}", item) for i, item in enumerate(rows_by_split[split])]
        for split in features.SPLITS})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spm_inputs")
    train_items, eval_items = _catalog_items()
    rng = random.Random(1)
    names = sorted(train_items)
    train_rows = [names[min(int(rng.expovariate(0.3)), NUM_TRAIN_ITEMS - 1)] for _ in range(400)]
    train_rows += ["not_in_catalog"] * 3
    heldout = sorted(eval_items) * 50
    rows = {features.TRAIN: train_rows, features.VALIDATION: heldout + names,
            features.EVAL: heldout}
    examples = _write_examples(str(tmp / "examples"), rows)
    catalog = _write_catalog(str(tmp / "catalog"), {**train_items, **eval_items})
    return examples, catalog, train_rows, train_items, eval_items


def _run(tmp_path, examples, catalog, vocab_sizes, max_sentences=1_000_000, name="spm",
         model_type="unigram"):
    out = SpmModels()
    out.uri = str(tmp_path / name)
    os.makedirs(out.uri)
    Executor().Do({core.EXAMPLES_KEY: [examples], core.CATALOG_KEY: [catalog]},
                  {core.SPM_MODELS_KEY: [out]},
                  {core.VOCAB_SIZES_KEY: json.dumps(vocab_sizes), core.MODEL_TYPE_KEY: model_type,
                   core.SEED_KEY: 3, core.MAX_SENTENCES_KEY: max_sentences})
    with open(os.path.join(out.uri, SpmModels.SUMMARY_JSON)) as f:
        return out, json.load(f)


def test_executor_reads_only_train(tmp_path, inputs):
    examples, catalog, train_rows, train_items, eval_items = inputs
    budgets = [S * K + 1, 32]
    out, summary = _run(tmp_path, examples, catalog, budgets)

    assert summary[spm_summary.SPLITS_READ] == [features.TRAIN]
    assert summary[spm_summary.NUM_TRAIN_ROWS] == len(train_rows)
    assert summary[spm_summary.NUM_ROWS_ITEM_NOT_IN_CATALOG] == 3
    assert summary[spm_summary.NUM_SENTENCES] == len(train_rows) - 3  # no validation / eval row
    assert summary[spm_summary.SAMPLED] is False
    train_sentences = {sid_symbols.sid_sentence(c, K) for c in train_items.values()}
    assert summary[spm_summary.NUM_DISTINCT_SENTENCES] == len(set(train_rows) - {"not_in_catalog"})
    assert (summary[spm_summary.NUM_SYMBOLS_IN_TRAINING_SENTENCES]
            <= len(set("".join(train_sentences))))
    assert summary[spm_summary.SYMBOLS_GUARANTEED] == S * K
    assert out.get_string_custom_property(SpmModels.VOCAB_SIZES_PROPERTY) == "25,32"

    eval_symbols = set("".join(sid_symbols.sid_sentence(c, K) for c in eval_items.values()))
    eval_only = eval_symbols - set("".join(train_sentences))
    assert eval_only  # symbols absent from train
    for budget in budgets:
        m = summary[spm_summary.MODELS][str(budget)]
        assert m[spm_summary.REQUESTED_VOCAB_SIZE] == budget
        assert m[spm_summary.ACTUAL_VOCAB_SIZE] <= budget
        assert m[spm_summary.UNKNOWN_PIECE_SHARE_ON_UNSEEN_SYMBOLS] == 0
        assert m[spm_summary.UNKNOWN_PIECE_SHARE_ON_ALL_SYMBOLS] == 0
        assert m[spm_summary.NUM_SYMBOLS_AS_SINGLE_PIECES] == S * K
        assert m[spm_summary.TF_TEXT_MATCHES] is True
        with open(SpmModels.model_path(out.uri, budget), "rb") as f:
            model = f.read()
        assert os.path.exists(SpmModels.vocab_path(out.uri, budget))
        assert len(model_proto.vocab_pieces(model)) == m[spm_summary.ACTUAL_VOCAB_SIZE]
        # eval-only symbols: single pieces, never inside a learned multi-symbol piece
        for piece in model_proto.vocab_pieces(model):
            if len(piece) > 1 and piece != core.UNK_PIECE:
                assert not set(piece) & eval_only
        new = [sid_symbols.sid_sentence(c, K) for c in eval_items.values()]
        ids = model_proto.tokenize_sid_sentences(model, new)
        assert all(len(x) == S and core.UNK_ID not in x for x in ids)
        assert model_proto.detokenize(model, ids) == new
    smallest = summary[spm_summary.MODELS][str(S * K + 1)]
    assert smallest[spm_summary.MEAN_PIECES_PER_SENTENCE] == S
    big = summary[spm_summary.MODELS]["32"]
    assert big[spm_summary.ACTUAL_VOCAB_SIZE] == 32
    assert big[spm_summary.MEAN_PIECES_PER_SENTENCE] < 2
    assert big[spm_summary.MULTI_SYMBOL_TOKEN_SHARE] > 0.3


def test_executor_samples_deterministically(tmp_path, inputs):
    examples, catalog, *_ = inputs
    out1, s1 = _run(tmp_path, examples, catalog, [40], max_sentences=100, name="a")
    out2, s2 = _run(tmp_path, examples, catalog, [40], max_sentences=100, name="b",
                    model_type="unigram")
    assert s1[spm_summary.NUM_SENTENCES] == 100 and s1[spm_summary.SAMPLED] is True
    assert s1 == s2
    with open(SpmModels.model_path(out1.uri, 40), "rb") as f1, \
            open(SpmModels.model_path(out2.uri, 40), "rb") as f2:
        assert f1.read() == f2.read()


def test_executor_errors(tmp_path, inputs):
    examples, catalog, *_ = inputs
    with pytest.raises(ValueError, match=f"at least {S * K + 1}"):
        _run(tmp_path, examples, catalog, [S * K], name="small")
    bad = _write_catalog(str(tmp_path / "bad_catalog"), {"a": (1, 2, 8)}, max_breaker_code=K)
    with pytest.raises(ValueError, match="collision-breaker"):
        _run(tmp_path, examples, catalog=bad, vocab_sizes=[40], name="bad")


def test_component_wiring():
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    catalog = channel_utils.as_channel([ItemCatalog()])
    comp = SpmTrainer(examples=examples, catalog=catalog, vocab_sizes=[1024, 512], seed=1,
                      max_sentences=10)
    assert json.loads(comp.exec_properties[core.VOCAB_SIZES_KEY]) == [512, 1024]
    assert comp.exec_properties[core.MODEL_TYPE_KEY] == "unigram"
    assert comp.outputs[core.SPM_MODELS_KEY].type is SpmModels
    assert set(comp.inputs) == {core.EXAMPLES_KEY, core.CATALOG_KEY}
    with pytest.raises(ValueError):
        SpmTrainer(examples=examples, catalog=catalog, vocab_sizes=[])
