"""spm_summary.json is a public file: its keys stay as they are; to_json writes non-finite floats
as null."""
import json

from components.spm_trainer import summary as spm_summary

_TOP_KEYS = {"splits_read", "num_train_rows", "num_rows_item_not_in_catalog", "num_sentences",
             "num_distinct_sentences", "num_symbols_in_training_sentences", "max_sentences",
             "sampled", "sid_length", "codebook_size", "model_type", "seed",
             "symbols_guaranteed", "models"}


def test_make_summary_keys_and_values():
    summary = spm_summary.make_summary(
        sentence_counts={"ab": 3, "c": 1}, num_train_rows=10, num_rows_item_not_in_catalog=2,
        max_sentences=100, sid_length=2, codebook_size=4, model_type="unigram", seed=7,
        models={9: {spm_summary.REQUESTED_VOCAB_SIZE: 9}})
    assert set(summary) == _TOP_KEYS
    assert summary[spm_summary.SPLITS_READ] == ["train"]
    assert summary[spm_summary.NUM_SENTENCES] == 4
    assert summary[spm_summary.NUM_DISTINCT_SENTENCES] == 2
    assert summary[spm_summary.NUM_SYMBOLS_IN_TRAINING_SENTENCES] == 3
    assert summary[spm_summary.SAMPLED] is True  # 8 rows in the catalog, 4 used
    assert summary[spm_summary.SYMBOLS_GUARANTEED] == 8
    assert summary[spm_summary.MODELS] == {"9": {"requested_vocab_size": 9}}


def test_to_json_writes_non_finite_floats_as_null():
    text = spm_summary.to_json({"a": float("nan"), 2: [1.5, float("inf")], "b": (None, True)})
    assert json.loads(text) == {"a": None, "2": [1.5, None], "b": [None, True]}
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)


def test_summary_line():
    summary = {spm_summary.MODEL_TYPE: "bpe", spm_summary.SPLITS_READ: ["train"],
               spm_summary.NUM_SENTENCES: 1200, spm_summary.NUM_DISTINCT_SENTENCES: 30,
               spm_summary.NUM_TRAIN_ROWS: 1500, spm_summary.NUM_ROWS_ITEM_NOT_IN_CATALOG: 3,
               spm_summary.MODELS: {"2049": {spm_summary.ACTUAL_VOCAB_SIZE: 2000,
                                             spm_summary.MEAN_PIECES_PER_SENTENCE: 1.5}}}
    assert spm_summary.summary_line(summary) == (
        "SpmTrainer (bpe, splits ['train']): 1,200 impressions (30 distinct SIDs) of 1,500 train "
        "rows, 3 skipped (item not in catalog); B=2,049: 2,000 pieces, 1.50 pieces/SID")
