"""The probes' input perturbations, on synthetic transformed arrays (no model)."""
import numpy as np
import pytest

from pipeline import probes
from schemas import features

LABELS, MASK = features.HISTORY_LABELS_DENSE, features.HISTORY_MASK


def _arrays(seed=0, rows=50, h=6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, h + 1, rows)
    mask = (np.arange(h)[None, :] < lengths[:, None]).astype(np.int64)
    return {LABELS: rng.integers(0, 2, (rows, h)) * mask, MASK: mask,
            features.HISTORY_SID: np.where(mask[..., None] == 1, rng.integers(0, 8, (rows, h, 4)), -1),
            features.USER_ID_HASHED: rng.integers(0, 100, rows)}


def test_shuffle_permutes_only_the_present_positions_of_each_row():
    arrays = _arrays()
    out = probes.shuffle_history_labels(arrays)
    labels, mask, shuffled = arrays[LABELS], arrays[MASK], out[LABELS]
    assert shuffled.shape == labels.shape and shuffled.dtype == labels.dtype
    np.testing.assert_array_equal(shuffled[mask == 0], labels[mask == 0])
    for r in range(labels.shape[0]):
        assert sorted(shuffled[r][mask[r] == 1]) == sorted(labels[r][mask[r] == 1])
    assert not np.array_equal(shuffled, labels)  # something moved
    # the other inputs are the same arrays; the input is not modified
    for k in (MASK, features.HISTORY_SID, features.USER_ID_HASHED):
        assert out[k] is arrays[k]
    np.testing.assert_array_equal(arrays[LABELS], _arrays()[LABELS])
    # a fixed seed: the same permutation every time, another seed another one
    np.testing.assert_array_equal(probes.shuffle_history_labels(arrays)[LABELS], shuffled)
    assert not np.array_equal(probes.shuffle_history_labels(arrays, seed=1)[LABELS], shuffled)


def test_a_rows_shuffle_does_not_depend_on_where_the_row_sits():
    arrays = _arrays()
    order = np.random.default_rng(3).permutation(len(arrays[LABELS]))
    moved = {k: v[order] for k, v in arrays.items()}
    np.testing.assert_array_equal(probes.shuffle_history_labels(moved)[LABELS],
                                  probes.shuffle_history_labels(arrays)[LABELS][order])


def test_shuffle_with_padding_anywhere_and_full_rows():
    labels = np.array([[1, 9, 0, 9, 0, 1], [1, 0, 0, 0, 0, 0]])
    mask = np.array([[1, 0, 1, 0, 1, 1], [1, 1, 1, 1, 1, 1]])
    seen = set()
    for seed in range(30):
        out = probes.shuffle_history_labels({LABELS: labels, MASK: mask}, seed=seed)[LABELS]
        assert out[0, 1] == 9 and out[0, 3] == 9  # padding stays
        assert sorted(out[0, [0, 2, 4, 5]]) == [0, 0, 1, 1]
        assert sorted(out[1]) == [0, 0, 0, 0, 0, 1]
        seen.add(tuple(out[1]))
    assert len(seen) > 3  # the single positive moves around the full row


def test_remove_history_pads_every_history_input():
    arrays = _arrays()
    pads = probes.history_pad_values([features.HISTORY_SID], empty_id_fingerprint=123)
    assert pads == {features.HISTORY_SID: probes.PAD_VALUE}
    out = probes.remove_history(arrays, pads)
    assert not out[LABELS].any() and not out[MASK].any()
    assert (out[features.HISTORY_SID] == -1).all()
    assert out[features.HISTORY_SID].shape == arrays[features.HISTORY_SID].shape
    assert out[features.HISTORY_SID].dtype == arrays[features.HISTORY_SID].dtype
    assert out[features.USER_ID_HASHED] is arrays[features.USER_ID_HASHED]
    assert arrays[MASK].any()  # the input is not modified

    fp = {features.HISTORY_FINGERPRINT: np.full((3, 4), 77, np.int64),
          LABELS: np.ones((3, 4), np.int64), MASK: np.ones((3, 4), np.int64)}
    pads = probes.history_pad_values([features.HISTORY_FINGERPRINT], empty_id_fingerprint=2 ** 61 + 5)
    out = probes.remove_history(fp, pads)
    assert (out[features.HISTORY_FINGERPRINT] == 2 ** 61 + 5).all()

    with pytest.raises(KeyError, match="history_catalog_row"):
        probes.remove_history(arrays, {features.HISTORY_CATALOG_ROW: -1})
    with pytest.raises(KeyError, match=MASK):
        probes.shuffle_history_labels({LABELS: arrays[LABELS]})


def test_probe_keys():
    assert probes.PROBE_KEYS == probes.probe_keys(probes.SHUFFLED_LABELS) + probes.probe_keys(
        probes.NO_HISTORY)


def test_remove_history_widens_a_compact_array_the_pad_does_not_fit():
    # TransformedSplits holds small integers compactly (models/ranking/inputs.compact_ints).
    arrays = {features.HISTORY_LABELS_DENSE: np.ones([2, 3], np.int8),
              features.HISTORY_MASK: np.ones([2, 3], np.int8),
              features.HISTORY_FINGERPRINT: np.full([2, 3], 7, np.int8),
              features.HISTORY_SID: np.full([2, 3, 2], 5, np.int8)}
    out = probes.remove_history(arrays, {features.HISTORY_FINGERPRINT: 2 ** 40,
                                         features.HISTORY_SID: -1})
    assert out[features.HISTORY_FINGERPRINT].dtype == np.int64
    assert (out[features.HISTORY_FINGERPRINT] == 2 ** 40).all()
    assert out[features.HISTORY_SID].dtype == np.int8 and (out[features.HISTORY_SID] == -1).all()
