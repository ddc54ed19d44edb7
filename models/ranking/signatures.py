"""Serving signatures of the exported ranking model (the request contract).

`serving_default` takes raw features as named tensors, the form TF Serving's REST API sends:
    user_id [batch] string, item_id [batch] string,
    history [batch, H] string padded with "", history_labels [batch, H] int64 (0 on padding)
and applies the Transform graph (`model.tft_layer`) inside, then the model. H is fixed per export
because TF Serving's JSON needs the same shape for a named input across one request's instances.
`serving_tf_example` takes serialized tf.Examples (what TFMA and BulkInferrer send).
`serving_by_sid` takes the request of `serving_default` plus the candidate's `semantic_id`
([batch, S] int64) and `content_embedding` ([batch, E] float32) given explicitly, for items added
to the catalog after the model was exported (their SID from the RQ-VAE's `encode` signature): the
candidate's SID-based inputs (and, for dense_content, its content embedding) come from the
request instead of the catalog lookup; history items still resolve through the catalog.
All return {"score": probability of a positive label}.
"""
from typing import Optional

import tensorflow as tf
import tensorflow_transform as tft

from models.sid import tf_ops
from models.ranking import preprocessing
from schemas import features


def _score(model, transformed):
    logits = model(transformed, training=False)
    return {features.PREDICTION_KEY: tf.reshape(tf.sigmoid(logits), [-1])}


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
                            spm_model_path: Optional[str] = None, spm_budget: int = 0):
    """serving_by_sid is added when the run has a catalog (sid_length and embedding_dim > 0);
    for sid_spm, `spm_model_path` is the SentencePiece model of `spm_budget`."""
    model.tft_layer = tf_transform_output.transform_features_layer()

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=features.USER_ID),
        tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
        tf.TensorSpec([None, history_length], tf.string, name=features.HISTORY),
        tf.TensorSpec([None, history_length], tf.int64, name=features.HISTORY_LABELS),
    ])
    def serve_raw(user_id, item_id, history, history_labels):
        raw = raw_named_tensors_to_raw_features(user_id, item_id, history, history_labels)
        return _score(model, model.tft_layer(raw))

    raw_feature_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_feature_spec.items() if k in features.SERVING_FEATURES}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_examples(serialized_examples):
        raw = tf.io.parse_example(serialized_examples, serving_spec)
        return _score(model, model.tft_layer(raw))

    signatures = {
        features.SERVING_DEFAULT_SIGNATURE: serve_raw.get_concrete_function(),
        features.SERVING_TF_EXAMPLE_SIGNATURE: serve_tf_examples.get_concrete_function(),
    }
    if sid_length and embedding_dim:
        if spm_model_path:
            model.spm_tokenizer = tf_ops.load_tokenizer(spm_model_path)

        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.string, name=features.USER_ID),
            tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
            tf.TensorSpec([None, history_length], tf.string, name=features.HISTORY),
            tf.TensorSpec([None, history_length], tf.int64, name=features.HISTORY_LABELS),
            tf.TensorSpec([None, sid_length], tf.int64, name=features.SEMANTIC_ID),
            tf.TensorSpec([None, embedding_dim], tf.float32, name=features.CONTENT_EMBEDDING),
        ])
        def serve_by_sid(user_id, item_id, history, history_labels, semantic_id, content_embedding):
            raw = raw_named_tensors_to_raw_features(user_id, item_id, history, history_labels)
            transformed = dict(model.tft_layer(raw))
            transformed[features.ITEM_SID] = semantic_id
            transformed[features.ITEM_CONTENT_EMBEDDING] = content_embedding
            if spm_model_path:
                transformed[features.item_spm_pieces(spm_budget)] = preprocessing.spm_piece_ids(
                    model.spm_tokenizer, semantic_id, codebook_size)
            return _score(model, transformed)

        signatures[features.SERVING_BY_SID_SIGNATURE] = serve_by_sid.get_concrete_function()
    return signatures
