"""The catalog lookup inside Transform: SIDs and rows of the candidate and the history, through
tf.Transform and its saved layer (as serving applies it), with the catalog file as an asset."""
import json
import os
import shutil

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from schemas import artifact_layout
from models.ranking import preprocessing
from schemas import features

CATALOG = {"a": (0, "3-1-0"), "b,x": (1, "3-1-1"), "007": (2, "9-4-0")}


def write_catalog(catalog_dir):
    os.makedirs(catalog_dir)
    with open(os.path.join(catalog_dir, artifact_layout.ItemCatalog.CATALOG_TSV), "w") as f:
        for item_id, (row, sid) in sorted(CATALOG.items()):
            f.write(f"{item_id}\t{row}\t{sid}\n")
    with open(os.path.join(catalog_dir, artifact_layout.ItemCatalog.METADATA_JSON), "w") as f:
        json.dump({"num_items": 3, "num_levels": 2, "sid_length": 3, "codebook_size": 16,
                   "embedding_dim": 4, "collision_breaker": True}, f)


def _raw_spec():
    return {
        features.USER_ID: tf.io.FixedLenFeature([1], tf.string),
        features.ITEM_ID: tf.io.FixedLenFeature([1], tf.string),
        features.HISTORY: tf.io.VarLenFeature(tf.string),
        features.HISTORY_LABELS: tf.io.VarLenFeature(tf.int64),
        features.LABEL: tf.io.FixedLenFeature([1], tf.int64),
    }


def test_catalog_lookup_through_tft_and_the_saved_layer(tmp_path):
    catalog_dir = str(tmp_path / "catalog")
    write_catalog(catalog_dir)
    config = {preprocessing.HISTORY_LENGTH: 3, preprocessing.USER_HASH_BUCKETS: 10,
              preprocessing.CATALOG_DIR: catalog_dir}
    rows = [
        {features.USER_ID: [b"u"], features.ITEM_ID: [b"007"], features.HISTORY: [b"a", b"b,x"],
         features.HISTORY_LABELS: [1, 0], features.LABEL: [1]},
        {features.USER_ID: [b"v"], features.ITEM_ID: [b"new"], features.HISTORY: [],
         features.HISTORY_LABELS: [], features.LABEL: [0]},
    ]
    out_dir = str(tmp_path / "tft")
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp"), force_tf_compat_v1=False):
        (data, _), transform_fn = (
            (rows, tft.DatasetMetadata.from_feature_spec(_raw_spec()))
            | tft_beam.AnalyzeAndTransformDataset(lambda x: preprocessing.preprocessing_fn(x, config)))
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)

    np.testing.assert_array_equal(data[0][features.ITEM_SID], [9, 4, 0])
    np.testing.assert_array_equal(data[0][features.HISTORY_SID].reshape(3, 3),
                                  [[3, 1, 0], [3, 1, 1], [-1, -1, -1]])
    assert data[0][features.ITEM_CATALOG_ROW] == 2
    np.testing.assert_array_equal(data[0][features.HISTORY_CATALOG_ROW], [0, 1, -1])
    np.testing.assert_array_equal(data[1][features.ITEM_SID], [-1, -1, -1])  # not in the catalog
    assert data[1][features.ITEM_CATALOG_ROW] == -1

    # The saved layer carries catalog.tsv as an asset: it resolves with the original gone.
    shutil.rmtree(catalog_dir)
    layer = tft.TFTransformOutput(out_dir).transform_features_layer()
    history = tf.sparse.from_dense(tf.constant([["b,x", "007"]]))
    out = layer({
        features.USER_ID: tf.constant([["u"]]), features.ITEM_ID: tf.constant([["a"]]),
        features.HISTORY: history,
        features.HISTORY_LABELS: tf.SparseTensor(history.indices, tf.constant([1, 1], tf.int64),
                                                 history.dense_shape)})
    np.testing.assert_array_equal(out[features.ITEM_SID].numpy(), [[3, 1, 0]])
    np.testing.assert_array_equal(out[features.HISTORY_SID].numpy()[0, :2], [[3, 1, 1], [9, 4, 0]])


def test_without_a_catalog_only_the_id_inputs_are_emitted():
    out = preprocessing.preprocessing_fn({
        features.USER_ID: tf.constant([["u"]]), features.ITEM_ID: tf.constant([["a"]]),
        features.HISTORY: tf.sparse.from_dense(tf.constant([["b"]])),
        features.HISTORY_LABELS: tf.sparse.from_dense(tf.constant([[1]], tf.int64)),
    }, {preprocessing.HISTORY_LENGTH: 2, preprocessing.USER_HASH_BUCKETS: 10})
    assert features.ITEM_SID not in out and features.ITEM_ID_FINGERPRINT in out
