"""Exports a trained RqVae as a SavedModel with two signatures (names from schemas/features.py):

- serving_default: `examples` (tf.string [None], serialized tf.Examples holding `embedding`, a
  float list of length E) -> `codes` (int64 [None, L]), `reconstruction_error` (float32 [None]).
  What tfx_bsl's RunInference calls (as TFX's BulkInferrer does).
- encode: `embedding` (float32 [None, E]) -> the same two outputs.

reconstruction_error is the per-item mean squared error between the embedding and the decoder's
reconstruction of the quantized latent. The codebooks are saved as the variables
`codebook_<l>` ([K, D] each); `<export_dir>/assets.extra/rqvae_config.json` holds the config.
"""
import json
import os
from typing import Optional

import tensorflow as tf

from models.rqvae import model as model_lib
from schemas import features

CONFIG_FILE = "rqvae_config.json"

# Signature input keys are the python argument names below; keep them equal to features.py.
assert features.RQVAE_EXAMPLES_INPUT == "examples"
assert features.RQVAE_EMBEDDING_INPUT == "embedding"


def _outputs(model: model_lib.RqVae, embedding: tf.Tensor) -> dict:
    codes, error = model.encode_with_error(embedding)
    return {features.RQVAE_CODES_OUTPUT: tf.cast(codes, tf.int64),
            features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT: tf.cast(error, tf.float32)}


def make_signatures(model: model_lib.RqVae) -> dict:
    dim = model.embedding_dim
    feature_spec = {features.ITEM_EMBEDDING: tf.io.FixedLenFeature([dim], tf.float32)}

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None], tf.string, name=features.RQVAE_EXAMPLES_INPUT)])
    def serve_examples(examples):
        parsed = tf.io.parse_example(examples, feature_spec)
        return _outputs(model, parsed[features.ITEM_EMBEDDING])

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, dim], tf.float32, name=features.RQVAE_EMBEDDING_INPUT)])
    def encode(embedding):
        return _outputs(model, embedding)

    return {features.RQVAE_SERVING_SIGNATURE: serve_examples,
            features.RQVAE_ENCODE_SIGNATURE: encode}


def export_rqvae(model: model_lib.RqVae, export_dir: str, config: Optional[dict] = None) -> str:
    """Writes the SavedModel (+ assets.extra/rqvae_config.json) to export_dir; returns it."""
    signatures = make_signatures(model)
    module = tf.Module()
    # Only the variables serving needs (plain tf.Variables: no Keras objects are serialised, so
    # nothing but the two signatures is traced).
    module.encoder_variables = list(model.encoder.variables)
    module.codebooks = list(model.quantizer.codebooks)
    module.decoder_variables = list(model.decoder.variables)
    module.encode = signatures[features.RQVAE_ENCODE_SIGNATURE]
    tf.saved_model.save(module, export_dir, signatures=signatures)
    cfg = dict(config or {})
    cfg.update(model.get_config())
    extra = os.path.join(export_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, CONFIG_FILE), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    return export_dir
