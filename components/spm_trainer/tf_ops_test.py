"""models/sid/tf_ops.py against the SpmTrainer: its SID sentences equal
models.sid.symbols.sid_sentence, and tensorflow_text tokenises them as the sentencepiece API does
with the models SpmTrainer trains."""
import random

import numpy as np
import pytest
import tensorflow as tf

from components.spm_trainer import core, model_proto
from models.sid import symbols as sid_symbols
from models.sid import tf_ops

K, S = 16, 3


def test_sid_codes_to_sentences_matches_symbols():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, K, size=(5, 4, S)).astype(np.int64)
    codes[1, 2] = -1  # unknown item / history padding
    codes[3, 0, 1] = -1  # any negative code: unknown
    got = tf_ops.sid_codes_to_sentences(tf.constant(codes), K).numpy()
    assert got.shape == (5, 4)
    for i in range(5):
        for j in range(4):
            want = "" if (codes[i, j] < 0).any() else sid_symbols.sid_sentence(codes[i, j], K)
            assert got[i, j].decode("utf-8") == want
    flat = tf_ops.sid_codes_to_sentences(tf.constant(codes[0], tf.int32), K).numpy()
    assert [s.decode("utf-8") for s in flat] == [sid_symbols.sid_sentence(c, K) for c in codes[0]]
    empty = tf_ops.sid_codes_to_sentences(tf.zeros([0, S], tf.int64), K)
    assert empty.shape == (0,)


def test_sid_codes_to_sentences_in_a_tf_function_and_errors():
    fn = tf.function(lambda c: tf_ops.sid_codes_to_sentences(c, K),
                     input_signature=[tf.TensorSpec([None, None], tf.int64)])
    out = fn(tf.constant([[1, 2, 3], [-1, -1, -1]], tf.int64)).numpy()
    assert out[0].decode("utf-8") == sid_symbols.sid_sentence((1, 2, 3), K) and out[1] == b""
    with pytest.raises(tf.errors.InvalidArgumentError, match="codebook_size"):
        fn(tf.constant([[1, K, 3]], tf.int64))
    with pytest.raises(ValueError, match="integer"):
        tf_ops.sid_codes_to_sentences(tf.constant([[1.0]]), K)


def test_tensorflow_text_gives_the_sentencepiece_ids(tmp_path):
    rng = random.Random(0)
    items = [tuple(rng.randrange(8) for _ in range(S)) for _ in range(30)]
    sentences = [sid_symbols.sid_sentence(items[min(int(rng.expovariate(0.2)), 29)], K)
                 for _ in range(2000)]
    symbols = sid_symbols.all_symbols(S, K)
    for model_type in core.MODEL_TYPES:
        model = core.train_spm(sentences, 70, symbols, model_type=model_type)
        probe = sorted(set(sentences)) + symbols + [sid_symbols.sid_sentence((15, 9, 8), K), ""]
        ids = model_proto.tokenize_sid_sentences(model, probe)
        assert tf_ops.tf_tokenize(model, probe) == ids
        path = tmp_path / f"{model_type}.model"
        path.write_bytes(model)
        tokenizer = tf_ops.load_tokenizer(str(path))
        codes = tf.constant([list(items[0]), [-1, -1, -1]], tf.int64)
        pieces = tf.cast(tokenizer.tokenize(tf_ops.sid_codes_to_sentences(codes, K)), tf.int64)
        assert pieces.to_list() == [ids[probe.index(sid_symbols.sid_sentence(items[0], K))], []]
        back = tokenizer.detokenize(tokenizer.tokenize(tf.constant(probe))).numpy()
        assert [b.decode("utf-8") for b in back] == probe
