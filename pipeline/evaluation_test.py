"""Compact in-memory splits: held in small integer dtypes, read by the model as int64."""
import numpy as np

from pipeline import evaluation


def test_compact_ints_picks_the_smallest_dtype_that_holds_the_values():
    assert evaluation.compact_ints(np.array([-1, 127])).dtype == np.int8
    assert evaluation.compact_ints(np.array([-1, 4095])).dtype == np.int16
    assert evaluation.compact_ints(np.array([0, 2 ** 20])).dtype == np.int32
    assert evaluation.compact_ints(np.array([0, 2 ** 40])).dtype == np.int64
    floats = np.array([0.5, 2.0], np.float32)
    assert evaluation.compact_ints(floats) is floats
    np.testing.assert_array_equal(evaluation.compact_ints(np.array([[-1, 3], [9, 0]])),
                                  [[-1, 3], [9, 0]])


def test_make_dataset_gives_the_model_int64_whatever_the_storage():
    arrays = {"pieces": np.array([[-1, 3], [9, 0], [2, 2]], np.int16),
              "label": np.array([1, 0, 1], np.int8),
              "embedding": np.ones([3, 2], np.float32)}
    batches = list(evaluation.make_dataset(arrays, 2))
    assert [b["pieces"].dtype.name for b in batches] == ["int64", "int64"]
    assert batches[0]["label"].dtype.name == "int64"
    assert batches[0]["embedding"].dtype.name == "float32"
    np.testing.assert_array_equal(np.concatenate([b["pieces"].numpy() for b in batches]),
                                  arrays["pieces"])
