import numpy as np
import tensorflow as tf

from models.ranking import preprocessing
from schemas import features

CFG = {preprocessing.HISTORY_LENGTH: 3, preprocessing.USER_HASH_BUCKETS: 100}


def _sparse(rows, dtype):
    indices = [[i, j] for i, r in enumerate(rows) for j in range(len(r))]
    values = [v for r in rows for v in r]
    width = max([len(r) for r in rows] + [1])
    return tf.SparseTensor(tf.constant(indices, tf.int64) if indices else tf.zeros([0, 2], tf.int64),
                           tf.constant(values, dtype), [len(rows), width])


def _inputs():
    return {
        features.USER_ID: tf.constant([["u1"], ["u2"]]),
        features.ITEM_ID: tf.constant([["7"], ["8"]]),
        features.HISTORY: _sparse([["5", "6", "7", "9"], []], tf.string),
        features.HISTORY_LABELS: _sparse([[1, 0, 1, 1], []], tf.int64),
        features.LABEL: tf.constant([[1], [0]], tf.int64),
    }


def test_history_is_truncated_to_most_recent_and_masked():
    out = preprocessing.preprocessing_fn(_inputs(), CFG)
    np.testing.assert_array_equal(out[features.HISTORY_MASK].numpy(), [[1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(out[features.HISTORY_LABELS_DENSE].numpy(), [[1, 0, 1], [0, 0, 0]])
    assert out[features.HISTORY_FINGERPRINT].shape == (2, 3)


def test_history_item_fingerprints_like_the_candidate():
    out = preprocessing.preprocessing_fn(_inputs(), CFG)
    # history of row 0 holds item "7" at position 2, the candidate of row 0 is "7"
    assert (out[features.HISTORY_FINGERPRINT].numpy()[0, 2]
            == out[features.ITEM_ID_FINGERPRINT].numpy()[0])
    assert 0 <= out[features.ITEM_ID_FINGERPRINT].numpy().min()
    assert out[features.ITEM_ID_FINGERPRINT].numpy().max() < preprocessing.FINGERPRINT_BUCKETS


def test_label_passes_through_and_is_optional():
    out = preprocessing.preprocessing_fn(_inputs(), CFG)
    np.testing.assert_array_equal(out[features.LABEL].numpy(), [1, 0])
    serving = {k: v for k, v in _inputs().items() if k != features.LABEL}
    assert features.LABEL not in preprocessing.preprocessing_fn(serving, CFG)


def test_integer_ids_are_hashed_as_their_string_form():
    ints = dict(_inputs())
    ints[features.ITEM_ID] = tf.constant([[7], [8]], tf.int64)
    a = preprocessing.preprocessing_fn(ints, CFG)[features.ITEM_ID_FINGERPRINT]
    b = preprocessing.preprocessing_fn(_inputs(), CFG)[features.ITEM_ID_FINGERPRINT]
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_row_flags_pass_through_like_is_new_item_and_are_optional():
    flags = (features.IS_NEW_ITEM, features.IS_NEW_USER, features.IS_TAIL_ITEM)
    training = dict(_inputs())
    training[features.IS_NEW_ITEM] = tf.constant([[0], [1]], tf.int64)
    training[features.IS_NEW_USER] = tf.constant([[1], [0]], tf.int64)
    training[features.IS_TAIL_ITEM] = tf.constant([[1], [1]], tf.int64)
    out = preprocessing.preprocessing_fn(training, CFG)
    np.testing.assert_array_equal(out[features.transformed_name(features.IS_NEW_ITEM)].numpy(), [0, 1])
    np.testing.assert_array_equal(out[features.transformed_name(features.IS_NEW_USER)].numpy(), [1, 0])
    np.testing.assert_array_equal(out[features.transformed_name(features.IS_TAIL_ITEM)].numpy(), [1, 1])
    for key in flags:
        assert out[features.transformed_name(key)].dtype == tf.int64
    # a serving request has none of them: no output, nothing required
    serving = {k: v for k, v in _inputs().items() if k in features.SERVING_FEATURES}
    out = preprocessing.preprocessing_fn(serving, CFG)
    assert not {features.transformed_name(k) for k in flags + (features.LABEL,)} & set(out)
