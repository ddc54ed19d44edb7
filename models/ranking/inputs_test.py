"""The model's inputs in memory: held in small integer dtypes, read by the model as int64."""
import numpy as np
import tensorflow as tf

from models.ranking import inputs


def test_compact_ints_picks_the_smallest_dtype_that_holds_the_values():
    assert inputs.compact_ints(np.array([-1, 127])).dtype == np.int8
    assert inputs.compact_ints(np.array([-1, 4095])).dtype == np.int16
    assert inputs.compact_ints(np.array([0, 2 ** 20])).dtype == np.int32
    assert inputs.compact_ints(np.array([0, 2 ** 40])).dtype == np.int64
    floats = np.array([0.5, 2.0], np.float32)
    assert inputs.compact_ints(floats) is floats
    np.testing.assert_array_equal(inputs.compact_ints(np.array([[-1, 3], [9, 0]])),
                                  [[-1, 3], [9, 0]])


def test_make_dataset_gives_the_model_int64_whatever_the_storage():
    arrays = {"pieces": np.array([[-1, 3], [9, 0], [2, 2]], np.int16),
              "label": np.array([1, 0, 1], np.int8),
              "embedding": np.ones([3, 2], np.float32)}
    batches = list(inputs.make_dataset(arrays, 2))
    assert [b["pieces"].dtype.name for b in batches] == ["int64", "int64"]
    assert batches[0]["label"].dtype.name == "int64"
    assert batches[0]["embedding"].dtype.name == "float32"
    np.testing.assert_array_equal(np.concatenate([b["pieces"].numpy() for b in batches]),
                                  arrays["pieces"])


def _batches(n, batch_size):
    ids = np.arange(n, dtype=np.int64)
    return tf.data.Dataset.from_tensor_slices(
        {"ids": ids, "history": np.stack([ids, -ids], 1)}).batch(batch_size)


def test_read_into_memory_holds_every_row_in_order_compactly():
    arrays = inputs.read_into_memory(_batches(300, 64), max_bytes=1 << 20)
    np.testing.assert_array_equal(arrays["ids"], np.arange(300))
    np.testing.assert_array_equal(arrays["history"][:, 1], -np.arange(300))
    # Batches 0-1 fit int8, later ones int16: the concatenation takes the wider.
    assert arrays["ids"].dtype == np.int16


def test_read_into_memory_gives_up_past_the_byte_limit_and_on_an_empty_split():
    assert inputs.read_into_memory(_batches(300, 64), max_bytes=100) is None
    assert inputs.read_into_memory(_batches(0, 64), max_bytes=1 << 20) is None


def test_a_seed_gives_the_same_batches_whatever_the_rows_order():
    rng = np.random.default_rng(0)
    arrays = {"pieces": rng.integers(-1, 50, [40, 3, 2]).astype(np.int16),
              "label": rng.integers(0, 2, 40).astype(np.int8),
              "weight": rng.random(40).astype(np.float32)}
    order = rng.permutation(40)
    rows = {k: v[order] for k, v in arrays.items()}  # the same rows, in another order
    first = [b["pieces"].numpy() for b in inputs.make_dataset(arrays, 8, shuffle_seed=3)]
    second = [b["pieces"].numpy() for b in inputs.make_dataset(rows, 8, shuffle_seed=3)]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))
    other_seed = [b["pieces"].numpy() for b in inputs.make_dataset(rows, 8, shuffle_seed=4)]
    assert not np.array_equal(np.concatenate(first), np.concatenate(other_seed))
    # int8 and int64 storage of the same values hash alike.
    wide = dict(rows, label=rows["label"].astype(np.int64))
    np.testing.assert_array_equal(inputs.content_order(wide), inputs.content_order(rows))
