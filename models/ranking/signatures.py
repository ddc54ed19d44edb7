"""Serving signatures of the exported ranking model (the request contract).

`serving_default` takes raw features as named tensors, the form TF Serving's REST API sends:
    user_id [batch] string, item_id [batch] string,
    history [batch, H] string padded with "", history_labels [batch, H] int64 (0 on padding)
and applies the Transform graph (`model.tft_layer`) inside, then the model. H is fixed per export
because TF Serving's JSON needs the same shape for a named input across one request's instances.
`serving_tf_example` takes serialized tf.Examples (what TFMA and BulkInferrer send); `regress`
and `classify` take the same under TF Serving's Classify / Regress contract (one input `inputs`;
outputs `outputs`, or `classes` "0"/"1" and their `scores`).
`serving_by_sid` takes the request of `serving_default` plus the candidate's `semantic_id`
([batch, S] int64) and `content_embedding` ([batch, E] float32) given explicitly, for items added
to the catalog after the model was exported (their SID from the RQ-VAE's `encode` signature): the
candidate's SID-based inputs (and, for dense_content, its content embedding) come from the
request instead of the catalog lookup; history items still resolve through the catalog. It is
exported only for representations that read SIDs or content (not random_hash).
The graphs check their inputs (`tf.debugging` asserts, which TF Serving answers with 400
INVALID_ARGUMENT): history labels are 0 or 1, and 0 on padding; a content embedding is finite;
SID codes are in [0, K) per RQ-VAE level and the collision breaker in [0, largest used + 1].
All but `classify` return {"score": probability of a positive label} (`regress`: "outputs").
"""
import os
from typing import Optional

import tensorflow as tf
import tensorflow_transform as tft

from models.sid import tf_ops
from models.ranking import catalog_lookup, preprocessing
from schemas import features


def _score(model, transformed):
    logits = model(transformed, training=False)
    return {features.PREDICTION_KEY: tf.reshape(tf.sigmoid(logits), [-1])}


def check_history_labels(labels, present):
    """Labels 0 or 1, and 0 where the history is padding (`present` False)."""
    labels = tf.cast(labels, tf.int64)
    ok = tf.logical_and(tf.reduce_all(tf.logical_or(tf.equal(labels, 0), tf.equal(labels, 1))),
                        tf.reduce_all(tf.logical_or(present, tf.equal(labels, 0))))
    return tf.debugging.Assert(ok, ["history_labels must be 0 or 1, and 0 where history is "
                                    "padding \"\""], name="check_history_labels")


def check_semantic_id(semantic_id, num_levels: int, codebook_size: int, max_breaker_code: int):
    """The L RQ-VAE codes in [0, K), the collision breaker in [0, max_breaker_code + 1]."""
    levels = semantic_id[:, :num_levels]
    ok = tf.reduce_all(tf.logical_and(levels >= 0, levels < codebook_size))
    if semantic_id.shape[1] > num_levels:
        breaker = semantic_id[:, num_levels:]
        ok = tf.logical_and(ok, tf.reduce_all(tf.logical_and(breaker >= 0,
                                                             breaker <= max_breaker_code + 1)))
    return tf.debugging.Assert(ok, [f"semantic_id codes must be in [0, {codebook_size}) for the "
                                    f"{num_levels} RQ-VAE levels and the collision breaker in "
                                    f"[0, {max_breaker_code + 1}]"], name="check_semantic_id")


def check_content_embedding(content_embedding):
    return tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(content_embedding)),
                               ["content_embedding must be finite (no NaN or Infinity)"],
                               name="check_content_embedding")


def catalog_max_breaker_code(tf_transform_output: tft.TFTransformOutput) -> int:
    """The largest collision-breaker code (the SIDs' last code) of the catalog the Transform
    graph resolves: catalog.tsv among its assets (models/ranking/catalog_lookup.py)."""
    path = os.path.join(tf_transform_output.transform_savedmodel_dir, "assets",
                        catalog_lookup.CATALOG_ASSET)
    largest = 0
    with tf.io.gfile.GFile(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) > 2 and parts[2]:
                largest = max(largest, int(parts[2].split(features.SID_SEPARATOR)[-1]))
    return largest


def raw_named_tensors_to_raw_features(user_id, item_id, history, history_labels):
    """Dense request tensors -> the raw feature structure the Transform layer was traced with."""
    present = tf.not_equal(history, features.HISTORY_PAD)
    indices = tf.where(present)
    dense_shape = tf.shape(history, out_type=tf.int64)
    return {
        features.USER_ID: tf.reshape(user_id, [-1, 1]),
        features.ITEM_ID: tf.reshape(item_id, [-1, 1]),
        # Padding "" is dropped; labels are taken where history is present, so a real item
        # with label 0 is kept (tf.sparse.from_dense would drop it).
        features.HISTORY: tf.SparseTensor(indices, tf.gather_nd(history, indices), dense_shape),
        features.HISTORY_LABELS: tf.SparseTensor(
            indices, tf.gather_nd(tf.cast(history_labels, tf.int64), indices), dense_shape),
    }


def make_serving_signatures(model, tf_transform_output: tft.TFTransformOutput, history_length: int,
                            sid_length: int = 0, embedding_dim: int = 0, codebook_size: int = 0,
                            spm_model_path: Optional[str] = None, spm_budget: int = 0,
                            representation: str = features.RANDOM_HASH, num_levels: int = 0):
    """serving_by_sid is added when the run has a catalog (sid_length and embedding_dim > 0) and
    the representation reads SIDs or content; for sid_spm, `spm_model_path` is the SentencePiece
    model of `spm_budget`. `num_levels` (default sid_length - 1: the last code is the collision
    breaker) bounds the checked SID codes."""
    model.tft_layer = tf_transform_output.transform_features_layer()

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=features.USER_ID),
        tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
        tf.TensorSpec([None, history_length], tf.string, name=features.HISTORY),
        tf.TensorSpec([None, history_length], tf.int64, name=features.HISTORY_LABELS),
    ])
    def serve_raw(user_id, item_id, history, history_labels):
        with tf.control_dependencies([check_history_labels(
                history_labels, tf.not_equal(history, features.HISTORY_PAD))]):
            raw = raw_named_tensors_to_raw_features(user_id, item_id, history, history_labels)
        return _score(model, model.tft_layer(raw))

    raw_feature_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_feature_spec.items() if k in features.SERVING_FEATURES}

    def score_examples(serialized_examples):
        raw = tf.io.parse_example(serialized_examples, serving_spec)
        labels = raw[features.HISTORY_LABELS]
        labels = labels.values if isinstance(labels, tf.SparseTensor) else labels
        with tf.control_dependencies([check_history_labels(labels, tf.ones_like(labels, tf.bool))]):
            return _score(model, model.tft_layer(raw))[features.PREDICTION_KEY]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_examples(serialized_examples):
        return {features.PREDICTION_KEY: score_examples(serialized_examples)}

    # TF Serving's Regress / Classify contract: one input "inputs" of serialized tf.Examples.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def serve_regress(inputs):
        return {"outputs": score_examples(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def serve_classify(inputs):
        score = score_examples(inputs)
        classes = tf.constant([list(features.CLASSIFY_CLASSES)])
        return {"classes": tf.tile(classes, [tf.shape(score)[0], 1]),
                "scores": tf.stack([1.0 - score, score], axis=1)}

    signatures = {
        features.SERVING_DEFAULT_SIGNATURE: serve_raw.get_concrete_function(),
        features.SERVING_TF_EXAMPLE_SIGNATURE: serve_tf_examples.get_concrete_function(),
        features.REGRESS_SIGNATURE: serve_regress.get_concrete_function(),
        features.CLASSIFY_SIGNATURE: serve_classify.get_concrete_function(),
    }
    if sid_length and embedding_dim and representation != features.RANDOM_HASH:
        if spm_model_path:
            model.spm_tokenizer = tf_ops.load_tokenizer(spm_model_path)
        num_levels = num_levels or sid_length - 1
        max_breaker_code = catalog_max_breaker_code(tf_transform_output)

        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.string, name=features.USER_ID),
            tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
            tf.TensorSpec([None, history_length], tf.string, name=features.HISTORY),
            tf.TensorSpec([None, history_length], tf.int64, name=features.HISTORY_LABELS),
            tf.TensorSpec([None, sid_length], tf.int64, name=features.SEMANTIC_ID),
            tf.TensorSpec([None, embedding_dim], tf.float32, name=features.CONTENT_EMBEDDING),
        ])
        def serve_by_sid(user_id, item_id, history, history_labels, semantic_id, content_embedding):
            checks = [check_history_labels(history_labels,
                                           tf.not_equal(history, features.HISTORY_PAD)),
                      check_semantic_id(semantic_id, num_levels, codebook_size, max_breaker_code),
                      check_content_embedding(content_embedding)]
            with tf.control_dependencies(checks):
                raw = raw_named_tensors_to_raw_features(user_id, item_id, history, history_labels)
                transformed = dict(model.tft_layer(raw))
                transformed[features.ITEM_SID] = tf.identity(semantic_id)
                transformed[features.ITEM_CONTENT_EMBEDDING] = tf.identity(content_embedding)
            if spm_model_path:
                transformed[features.item_spm_pieces(spm_budget)] = preprocessing.spm_piece_ids(
                    model.spm_tokenizer, semantic_id, codebook_size)
            return _score(model, transformed)

        signatures[features.SERVING_BY_SID_SIGNATURE] = serve_by_sid.get_concrete_function()
    return signatures
