"""The Trainer's input: only the model's features, from memory when they fit, else streamed."""
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

from models.ranking import trainer_module


def test_model_schema_keeps_only_the_named_features():
    schema = schema_pb2.Schema()
    for name in ("label", "item_sid", "history_spm_512", "history_sid"):
        schema.feature.add(name=name, type=schema_pb2.INT)
    kept = trainer_module._model_schema(schema, ("label", "history_sid"))
    assert [f.name for f in kept.feature] == ["label", "history_sid"]
    assert len(schema.feature) == 4  # the input schema is not changed


def _fn_args(n):
    """FnArgs whose data accessor serves rows 0..n-1 (in order, as one epoch) and records how
    it was asked."""
    calls = []

    def factory(file_pattern, options, schema):
        calls.append((options.batch_size, options.shuffle))
        ids = np.arange(n, dtype=np.int64)
        return tf.data.Dataset.from_tensor_slices(
            {"label": ids % 2, "item_id_fingerprint": ids}).batch(options.batch_size)
    return types.SimpleNamespace(data_accessor=types.SimpleNamespace(tf_dataset_factory=factory)), calls


def _epoch(ds):
    return np.concatenate([b["item_id_fingerprint"].numpy() for b in ds])


def test_a_split_that_fits_is_read_once_and_reshuffled_every_epoch():
    fn_args, calls = _fn_args(100)
    ds = trainer_module._dataset(fn_args, "train/*", None, batch_size=16, shuffle_seed=3)
    first, second = _epoch(ds), _epoch(ds)
    assert calls == [(trainer_module.READ_BATCH_SIZE, False)]  # one pass over the files
    assert sorted(first) == list(range(100)) and sorted(second) == list(range(100))
    assert list(first) != list(second)
    assert next(iter(ds))["item_id_fingerprint"].dtype == tf.int64  # held compactly, read as int64
    in_order = trainer_module._dataset(fn_args, "eval/*", None, batch_size=16, shuffle_seed=None)
    assert list(_epoch(in_order)) == list(range(100))


def test_a_split_past_the_memory_limit_is_streamed(monkeypatch):
    monkeypatch.setattr(trainer_module, "IN_MEMORY_MAX_BYTES", 10)
    fn_args, calls = _fn_args(100)
    ds = trainer_module._dataset(fn_args, "train/*", None, batch_size=16, shuffle_seed=3)
    assert calls[-1] == (16, True)
    assert sorted(_epoch(ds)) == list(range(100))


def test_a_failed_export_names_the_trainer_and_leaves_no_partial_model(tmp_path):
    class _Model:
        def save(self, path, **kwargs):
            tf.io.gfile.makedirs(os.path.join(path, "variables"))  # half written, then it breaks
            raise ValueError("Message SavedMetadata exceeds maximum protobuf size of 2GB: 2287978498")

    out = str(tmp_path / "serving_model_dir")
    with pytest.raises(RuntimeError, match=r"Trainer \(representation dense_content.*2 GB"):
        trainer_module.export_model(_Model(), out, {}, "representation dense_content, 271,379 "
                                    "catalog items")
    assert not os.path.exists(out)
