"""Representations on a tiny catalog: known SIDs -> known n-gram and prefix ids; budgets."""
import numpy as np
import pytest
import tensorflow as tf

from models.ranking import representations as reps
from schemas import features

K = 4


def _opts(budget, sid_length=3, **kw):
    return reps.RepresentationOptions(table_budget=budget, embedding_dim=2, sid_length=sid_length,
                                      codebook_size=K, **kw)


def test_ngram_keys_group_codes_and_keep_an_odd_last_unigram():
    codes = tf.constant([[1, 2, 3], [3, 0, 1]], tf.int64)
    bigram = reps.SidNgram(_opts(1000), n=2)
    keys = [k.numpy().tolist() for k in bigram.keys(codes)]
    assert keys == [[1 * K + 2, 3 * K + 0], [3, 1]]
    assert bigram.key_spaces == [K * K, K]
    unigram = reps.SidNgram(_opts(1000), n=1)
    assert [k.numpy().tolist() for k in unigram.keys(codes)] == [[1, 3], [2, 0], [3, 1]]


def test_prefix_keys_are_exact_prefix_values():
    codes = tf.constant([[1, 2, 3]], tf.int64)
    prefix = reps.SidPrefixNgram(_opts(1000))
    assert [k.numpy().tolist() for k in prefix.keys(codes)] == [[1], [1 * K + 2], [(1 * K + 2) * K + 3]]
    assert prefix.key_spaces == [K, K ** 2, K ** 3]


def test_budget_is_split_and_small_tables_use_only_their_keys():
    # 3 unigram tables of K=4 keys fit in far fewer rows than B=1000: report what is used.
    assert reps.SidNgram(_opts(1000), n=1).table_rows == 3 * K
    # bigram tables of 16 and 4 keys with B=20: shares of 10 -> 10 (hashed) + 4 (exact)
    bigram = reps.SidNgram(_opts(20), n=2)
    assert bigram.rows == [10, 4] and bigram.table_rows == 14
    prefix = reps.SidPrefixNgram(_opts(30))  # shares of 10: 4 exact, 10 hashed, 10 hashed
    assert prefix.rows == [4, 10, 10]
    for r in (reps.RandomHash(_opts(30)), reps.SidSpm(_opts(30))):
        assert r.table_rows == 30
    assert reps.DenseContent(_opts(30, catalog_embeddings=np.ones((5, 3), np.float32))).table_rows == 0
    with pytest.raises(ValueError, match="budget"):
        reps.split_budget([10, 10, 10], 2)


def test_table_layout_says_which_budgets_build_the_same_model():
    def layout(name, budget):
        return reps.table_layout(name, budget, sid_length=3, codebook_size=K)
    # the layout of an instance's own tables
    assert layout(features.SID_NGRAM_2, 20) == tuple(reps.SidNgram(_opts(20), n=2).rows)
    assert layout(features.SID_PREFIX_NGRAM, 30) == tuple(reps.SidPrefixNgram(_opts(30)).rows)
    # once every table is exact, more budget changes nothing; no table: nothing ever
    assert layout(features.SID_NGRAM_1, 100) == layout(features.SID_NGRAM_1, 1000) == (K,) * 3
    assert layout(features.SID_PREFIX_NGRAM, 30) != layout(features.SID_PREFIX_NGRAM, 300)
    assert layout(features.DENSE_CONTENT, 30) == layout(features.DENSE_CONTENT, 3000) == ()
    # one table of B rows (sid_spm: also another SentencePiece model per budget)
    for name in (features.RANDOM_HASH, features.SID_SPM):
        assert layout(name, 30) != layout(name, 40)


def test_hashed_rows_stay_in_range_and_spread():
    keys = tf.range(10_000, dtype=tf.int64)
    rows = reps.hash_int64(keys, 97).numpy()
    assert rows.min() >= 0 and rows.max() < 97
    assert len(np.unique(rows)) == 97


@pytest.mark.parametrize("name", features.REPRESENTATIONS)
def test_an_item_outside_the_catalog_gets_a_zero_or_id_embedding(name):
    opts = _opts(64, catalog_embeddings=np.ones((5, 3), np.float32))
    rep = reps.make_representation(name, opts)
    inputs = {
        features.ITEM_ID_FINGERPRINT: tf.constant([5, 6], tf.int64),
        features.ITEM_SID: tf.constant([[1, 2, 3], [-1, -1, -1]], tf.int64),
        features.ITEM_CATALOG_ROW: tf.constant([0, -1], tf.int64),
        features.item_spm_pieces(64): tf.constant([[3, 9, -1], [-1, -1, -1]], tf.int64),
    }
    out = rep(inputs).numpy()
    assert out.shape == (2, 2)
    if name != features.RANDOM_HASH:  # ids always hash; SID-based inputs of an unknown item are empty
        if name == features.DENSE_CONTENT:  # projection of the zero row = the bias (zeros at init)
            np.testing.assert_allclose(out[1], 0.0, atol=1e-6)
        else:
            np.testing.assert_array_equal(out[1], 0.0)


def test_history_role_reads_history_inputs_with_an_extra_axis():
    rep = reps.SidNgram(_opts(64), n=2)
    out = rep({features.HISTORY_SID: tf.zeros([2, 5, 3], tf.int64)}, role=reps.HISTORY)
    assert out.shape == (2, 5, 2)


def test_long_prefixes_past_int64_are_hashed_consistently():
    # The paper's 2048 codes x 9 levels: prefixes of 6+ codes exceed 2^62 distinct values.
    opts = reps.RepresentationOptions(table_budget=9000, embedding_dim=2, sid_length=9,
                                      codebook_size=2048)
    prefix = reps.SidPrefixNgram(opts)
    a = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    b = a[:7] + [100, 9]  # shares the first 7 codes with a
    keys = [k.numpy() for k in prefix.keys(tf.constant([a, b], tf.int64))]
    assert all(0 <= k.min() and k.max() < 2 ** 62 for k in keys[5:])
    assert all(k[0] == k[1] for k in keys[:7]) and all(k[0] != k[1] for k in keys[7:])
    rows = prefix({features.ITEM_SID: tf.constant([a, b], tf.int64)})
    assert rows.shape == (2, 2)


def _all_inputs(budget, history_length=5):
    """Every item input Transform emits, for both roles, at budget B."""
    codes = tf.constant([[1, 2, 3], [-1, -1, -1]], tf.int64)
    pieces = tf.constant([[3, 9, -1], [-1, -1, -1]], tf.int64)

    def hist(t):
        return tf.repeat(tf.expand_dims(t, 1), history_length, axis=1)

    candidate = {features.ITEM_ID_FINGERPRINT: tf.constant([5, 6], tf.int64),
                 features.ITEM_SID: codes,
                 features.ITEM_CATALOG_ROW: tf.constant([0, -1], tf.int64),
                 features.item_spm_pieces(budget): pieces}
    history = {features.HISTORY_FINGERPRINT: hist(candidate[features.ITEM_ID_FINGERPRINT]),
               features.HISTORY_SID: hist(codes),
               features.HISTORY_CATALOG_ROW: hist(candidate[features.ITEM_CATALOG_ROW]),
               features.history_spm_pieces(budget): hist(pieces)}
    return {**candidate, **history}


@pytest.mark.parametrize("name", features.REPRESENTATIONS)
def test_each_representation_reads_exactly_its_declared_input_per_role(name):
    opts = _opts(64, catalog_embeddings=np.ones((5, 3), np.float32))
    rep = reps.make_representation(name, opts)
    keys = reps.item_input_keys(name, 64)
    assert keys == type(rep).input_keys(64) == {r: rep.input_key(r) for r in reps.ROLES}
    everything = _all_inputs(64)
    assert set(keys.values()) <= set(everything)
    assert rep({keys[reps.CANDIDATE]: everything[keys[reps.CANDIDATE]]}).shape == (2, 2)
    out = rep({keys[reps.HISTORY]: everything[keys[reps.HISTORY]]}, role=reps.HISTORY)
    assert out.shape == (2, 5, 2)
    # the other representations' inputs alone are not enough
    others = {k: v for k, v in everything.items() if k not in keys.values()}
    with pytest.raises(KeyError):
        rep(others)


def test_input_keys_by_representation():
    expected = {
        features.RANDOM_HASH: (features.ITEM_ID_FINGERPRINT, features.HISTORY_FINGERPRINT),
        features.SID_NGRAM_1: (features.ITEM_SID, features.HISTORY_SID),
        features.SID_NGRAM_2: (features.ITEM_SID, features.HISTORY_SID),
        features.SID_PREFIX_NGRAM: (features.ITEM_SID, features.HISTORY_SID),
        features.DENSE_CONTENT: (features.ITEM_CATALOG_ROW, features.HISTORY_CATALOG_ROW),
        features.SID_SPM: (features.item_spm_pieces(1024), features.history_spm_pieces(1024)),
    }
    assert set(expected) == set(features.REPRESENTATIONS)
    for name, (candidate, history) in expected.items():
        assert reps.item_input_keys(name, 1024) == {reps.CANDIDATE: candidate, reps.HISTORY: history}
    with pytest.raises(ValueError, match="unknown representation"):
        reps.item_input_keys("nope", 512)


def test_model_input_keys_add_user_and_history_context():
    for name in features.REPRESENTATIONS:
        item = reps.item_input_keys(name, 512)
        extra = reps.representation_class(name).extra_input_keys(512)  # random_hash's rows
        without = reps.model_input_keys(name, 512, use_history=False)
        with_history = reps.model_input_keys(name, 512, use_history=True)
        def role_keys(role):
            return (item[role],) + ((extra[role],) if role in extra else ())
        assert without == (features.USER_ID_HASHED,) + role_keys(reps.CANDIDATE)
        assert with_history == without + role_keys(reps.HISTORY) + (
            features.HISTORY_LABELS_DENSE, features.HISTORY_MASK)
        assert not any(k.startswith("history") for k in without)
        assert features.LABEL not in with_history  # the label is the trainer's, not an input
    assert features.history_spm_pieces(1024) in reps.model_input_keys(features.SID_SPM, 1024, True)
    with pytest.raises(ValueError, match="unknown representation"):
        reps.model_input_keys("nope", 512, True)


def _inputs():
    return {
        features.ITEM_ID_FINGERPRINT: tf.constant([5, 6, 7, 8], tf.int64),
        features.ITEM_SID: tf.constant([[1, 2, 3]] * 4, tf.int64),
        features.item_spm_pieces(64): tf.constant([[3, 9, 4]] * 4, tf.int64),
    }


@pytest.mark.parametrize("name", [features.RANDOM_HASH, features.SID_PREFIX_NGRAM, features.SID_SPM])
def test_tables_start_at_zero_so_an_unseen_row_reads_as_the_average_item(name):
    out = reps.make_representation(name, _opts(64))(_inputs()).numpy()
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("name", [features.RANDOM_HASH, features.SID_PREFIX_NGRAM, features.SID_SPM])
def test_l2_adds_a_loss_in_training_only(name):
    rep = reps.make_representation(name, _opts(64, l2=0.1))
    rep(_inputs())
    for table in rep.trainable_weights:
        table.assign(tf.ones_like(table))
    rep(_inputs(), training=False)
    assert not rep.losses
    rep(_inputs(), training=True)
    assert len(rep.losses) >= 1 and float(tf.add_n(rep.losses)) > 0


def test_cold_start_dropout_keeps_a_leading_run_of_tables_in_training_only():
    tf.keras.utils.set_random_seed(0)
    rep = reps.SidPrefixNgram(_opts(64, cold_start_dropout=1.0))
    inputs = {features.ITEM_SID: tf.constant([[1, 2, 3]] * 200, tf.int64)}
    rep(inputs)
    for i, table in enumerate(rep.tables):  # table i contributes 10^i to every item
        table.embeddings.assign(tf.fill(table.embeddings.shape, 10.0 ** i))
    np.testing.assert_allclose(rep(inputs).numpy()[:, 0], 111.0)  # inference: every table
    kept = set(np.round(rep(inputs, training=True).numpy()[:, 0]).tolist())
    assert kept == {0.0, 1.0, 11.0}  # the first 0, 1 or 2 levels, never the whole SID
    history = rep({features.HISTORY_SID: tf.constant([[[1, 2, 3]]] * 4, tf.int64)},
                  role=reps.HISTORY, training=True)
    np.testing.assert_allclose(history.numpy()[..., 0], 111.0)  # only the candidate drops


def test_random_hash_gives_each_catalog_item_its_own_row_while_the_catalog_fits():
    rows = tf.constant([0, 1, 2, -1], tf.int64)  # three catalog items and one unknown id
    inputs = {features.ITEM_ID_FINGERPRINT: tf.constant([5, 15, 25, 35], tf.int64),
              features.ITEM_CATALOG_ROW: rows}
    exact = reps.RandomHash(_opts(10, catalog_size=3))
    exact(inputs)
    exact.table.embeddings.assign(tf.reshape(tf.range(20, dtype=tf.float32), [10, 2]))
    # rows 0, 1, 2, and the unknown id's fingerprint hashed into the spare rows 3..9: 3 + 35 % 7
    np.testing.assert_array_equal(exact(inputs).numpy()[:, 0], [0, 2, 4, 6])
    # a catalog with no row to spare, or none at all: the fingerprint modulo B (5, 15, 25, 35
    # collide in pairs)
    for hashed in (reps.RandomHash(_opts(10, catalog_size=10)), reps.RandomHash(_opts(10))):
        hashed(inputs)
        hashed.table.embeddings.assign(tf.reshape(tf.range(20, dtype=tf.float32), [10, 2]))
        np.testing.assert_array_equal(hashed(inputs).numpy()[:, 0], [10, 10, 10, 10])
    assert reps.model_input_keys(features.RANDOM_HASH, 10, use_history=True, use_user_id=False) == (
        features.ITEM_ID_FINGERPRINT, features.ITEM_CATALOG_ROW, features.HISTORY_FINGERPRINT,
        features.HISTORY_CATALOG_ROW, reps.HISTORY_LABELS_KEY, reps.HISTORY_MASK_KEY)
