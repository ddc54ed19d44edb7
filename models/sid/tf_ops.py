"""TensorFlow helpers for Transform's preprocessing_fn: Semantic ID codes -> SID sentences (the
same strings as symbols.sid_sentence), and tokenisation with tensorflow_text as serving does.

    from models.sid import tf_ops
    sentences = tf_ops.sid_codes_to_sentences(codes, codebook_size)        # tf.string [...]
    tokenizer = tf_ops.load_tokenizer(SpmModels.model_path(spm_uri, B))
    piece_ids = tf.cast(tokenizer.tokenize(sentences), tf.int64)            # ragged, ids in [1, B)
"""
from __future__ import annotations

from typing import List, Sequence

import tensorflow as tf

from models.sid import symbols


def sid_codes_to_sentences(codes: tf.Tensor, codebook_size: int,
                           validate: bool = True) -> tf.Tensor:
    """codes [..., S] int (S = sid_length) -> tf.string [...]: per SID the UTF-8 string of the
    symbols chr(0xF0000 + level * codebook_size + code) (symbols.sid_sentence). A SID with any
    negative code (-1: item not in the catalog, history padding) gives the empty string, which
    tokenises to no pieces. With `validate`, a code >= codebook_size fails the graph with an
    InvalidArgumentError (the symbol would belong to the next level)."""
    codes = tf.convert_to_tensor(codes)
    if not codes.dtype.is_integer:
        raise ValueError(f"sid_codes_to_sentences: integer codes expected, got {codes.dtype}")
    if codes.shape.rank is not None and codes.shape.rank < 1:
        raise ValueError("sid_codes_to_sentences: codes need a last axis of SID levels")
    codes = tf.cast(codes, tf.int64)
    sid_length = tf.shape(codes, out_type=tf.int64)[-1]
    static_s = codes.shape[-1]
    if static_s is not None:
        symbols.check_symbol_space(int(static_s), int(codebook_size))
    known = tf.reduce_all(codes >= 0, axis=-1)  # [...]
    checks = []
    if validate:
        checks.append(tf.debugging.assert_less(
            codes, tf.constant(codebook_size, tf.int64),
            message=f"sid_codes_to_sentences: a SID code is >= codebook_size {codebook_size}"))
    with tf.control_dependencies(checks):
        levels = tf.range(sid_length, dtype=tf.int64) * codebook_size
        points = symbols.SYMBOL_BASE + levels + tf.maximum(codes, 0)
    flat = tf.reshape(tf.cast(points, tf.int32), tf.stack([-1, tf.cast(sid_length, tf.int32)]))
    encoded = tf.strings.unicode_encode(flat, output_encoding="UTF-8")  # [N]
    encoded = tf.reshape(encoded, tf.shape(codes)[:-1])
    return tf.where(known, encoded, tf.zeros_like(encoded))


def load_tokenizer(model_path: str):
    """tensorflow_text.SentencepieceTokenizer over a .model file (read with tf.io.gfile)."""
    import tensorflow_text  # pylint: disable=import-outside-toplevel

    with tf.io.gfile.GFile(model_path, "rb") as f:
        return tensorflow_text.SentencepieceTokenizer(model=f.read())


def tf_tokenize(model_bytes: bytes, sentences: Sequence[str]) -> List[List[int]]:
    """Piece ids (int64) of each sentence with tensorflow_text.SentencepieceTokenizer, as a list
    of lists (to compare with the sentencepiece API's ids: SpmTrainer's
    model_proto.tokenize_sid_sentences)."""
    import tensorflow_text  # pylint: disable=import-outside-toplevel

    if not len(sentences):
        return []
    tokenizer = tensorflow_text.SentencepieceTokenizer(model=model_bytes)
    ids = tf.cast(tokenizer.tokenize(tf.constant(list(sentences), tf.string)), tf.int64)
    return [[int(i) for i in row] for row in ids.to_list()]
