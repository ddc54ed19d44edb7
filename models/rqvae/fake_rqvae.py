"""A tiny stand-in for the RQ-VAE SavedModel, for tests (same signatures as models/rqvae/).

    from models.rqvae import fake_rqvae
    fake_rqvae.save_fake_rqvae(path_utils.serving_model_path(model.uri), embedding_dim=8,
                               num_levels=3, codebook_size=4)

Signatures (names from schemas/features.py):
  serving_default: examples (string [None], serialized tf.Examples with `embedding`, float [E])
                   -> codes (int64 [None, L]), reconstruction_error (float32 [None])
  encode:          embedding (float32 [None, E]) -> the same outputs
The "encoder" is a fixed random projection to latent_dim; each level picks the nearest code of a
fixed random codebook to the residual (residual quantisation); reconstruction_error is the mean
squared final residual. Deterministic for a given seed.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from schemas import features


class FakeRqVae(tf.Module):
    """Random projection + fixed codebooks + residual argmin."""

    def __init__(self, embedding_dim: int, num_levels: int, codebook_size: int,
                 latent_dim: int = 4, seed: int = 0):
        super().__init__()
        rnd = np.random.default_rng(seed)
        self.embedding_dim = embedding_dim
        self.projection = tf.constant(
            rnd.normal(size=(embedding_dim, latent_dim)) / np.sqrt(embedding_dim), tf.float32)
        # Shrinking scales per level, as in a trained residual quantiser.
        scales = 0.5 ** np.arange(num_levels)
        self.codebooks = tf.constant(
            rnd.normal(size=(num_levels, codebook_size, latent_dim)) * scales[:, None, None],
            tf.float32)
        self.num_levels = num_levels

    def _encode(self, embedding):
        latent = tf.matmul(embedding, self.projection)
        residual = latent
        codes = []
        for level in range(self.num_levels):
            codebook = self.codebooks[level]  # [K, D]
            dist = tf.reduce_sum(tf.square(residual[:, None, :] - codebook[None, :, :]), axis=-1)
            idx = tf.argmin(dist, axis=1, output_type=tf.int64)
            codes.append(idx)
            residual = residual - tf.gather(codebook, idx)
        return {features.RQVAE_CODES_OUTPUT: tf.stack(codes, axis=1),
                features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT: tf.reduce_mean(tf.square(residual),
                                                                           axis=1)}

    def encode_fn(self):
        @tf.function(input_signature=[tf.TensorSpec([None, self.embedding_dim], tf.float32,
                                                    name=features.RQVAE_EMBEDDING_INPUT)])
        def encode(embedding):
            return self._encode(embedding)
        return encode

    def serving_fn(self):
        spec = {features.ITEM_EMBEDDING: tf.io.FixedLenFeature([self.embedding_dim], tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                    name=features.RQVAE_EXAMPLES_INPUT)])
        def serve(examples):
            parsed = tf.io.parse_example(examples, spec)
            return self._encode(parsed[features.ITEM_EMBEDDING])
        return serve


def save_fake_rqvae(export_dir: str, embedding_dim: int, num_levels: int, codebook_size: int,
                    latent_dim: int = 4, seed: int = 0) -> FakeRqVae:
    """Writes the fake SavedModel to export_dir (e.g. `<model uri>/Format-Serving`)."""
    module = FakeRqVae(embedding_dim, num_levels, codebook_size, latent_dim, seed)
    tf.saved_model.save(module, export_dir, signatures={
        features.RQVAE_SERVING_SIGNATURE: module.serving_fn(),
        features.RQVAE_ENCODE_SIGNATURE: module.encode_fn(),
    })
    return module


def encode_numpy(module: FakeRqVae, embeddings: np.ndarray):
    """(codes [N, L] int64, reconstruction_error [N] float32) of the module, eagerly."""
    out = module._encode(tf.constant(np.asarray(embeddings, np.float32)))
    return (out[features.RQVAE_CODES_OUTPUT].numpy(),
            out[features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT].numpy())
