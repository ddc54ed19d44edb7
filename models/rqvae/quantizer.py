"""Residual quantizer: L levels, each a codebook [K, D].

At level l the current residual r_l (r_0 = z) picks the codeword e_l nearest in squared distance,
and r_{l+1} = r_l - e_l. The quantized latent is sum_l e_l = z - r_L.
"""
import collections

import tensorflow as tf

QuantizerOutput = collections.namedtuple(
    "QuantizerOutput",
    ["codes",       # int64 [B, L]: the chosen code per level (the Semantic ID)
     "quantized",   # float [B, D]: sum of the chosen codewords
     "residuals",   # float [B, L, D]: residual entering each level (residuals[:, 0] = z)
     "codewords"])  # float [B, L, D]: chosen codeword per level


def nearest_code(residual: tf.Tensor, codebook: tf.Tensor) -> tf.Tensor:
    """argmin_k ||r - c_k||^2 for each row of residual [B, D] -> int64 [B].

    ||r||^2 is the same for every k, so the argmin uses ||c_k||^2 - 2 r.c_k (one matmul).
    """
    distances = (tf.reduce_sum(tf.square(codebook), axis=1)[tf.newaxis, :]
                 - 2.0 * tf.matmul(residual, codebook, transpose_b=True))
    return tf.argmin(distances, axis=1, output_type=tf.int64)


def straight_through(z: tf.Tensor, z_q: tf.Tensor) -> tf.Tensor:
    """z_q in the forward pass, identity gradient to z in the backward pass."""
    return z + tf.stop_gradient(z_q - z)


class ResidualQuantizer(tf.keras.layers.Layer):
    """L codebooks (tf.Variables `codebook_<l>`, [K, D]); call(z) -> QuantizerOutput."""

    def __init__(self, num_levels: int, codebook_size: int, latent_dim: int, seed: int = 0,
                 **kwargs):
        kwargs.setdefault("name", "quantizer")
        super().__init__(**kwargs)
        self.num_levels = int(num_levels)
        self.codebook_size = int(codebook_size)
        self.latent_dim = int(latent_dim)
        # Placeholder init (k-means on the first batch replaces it, see model.RqVae).
        self.codebooks = [
            self.add_weight(
                name=f"codebook_{l}", shape=(self.codebook_size, self.latent_dim),
                initializer=tf.keras.initializers.RandomUniform(
                    -1.0 / self.codebook_size, 1.0 / self.codebook_size, seed=seed + l),
                trainable=True, dtype=tf.float32)
            for l in range(self.num_levels)]
        self.built = True

    def call(self, z: tf.Tensor) -> QuantizerOutput:
        residual = z
        codes, residuals, codewords = [], [], []
        for codebook in self.codebooks:
            code = nearest_code(tf.stop_gradient(residual), codebook)
            codeword = tf.gather(codebook, code)
            codes.append(code)
            residuals.append(residual)
            codewords.append(codeword)
            residual = residual - codeword
        codewords_t = tf.stack(codewords, axis=1)
        return QuantizerOutput(codes=tf.stack(codes, axis=1),
                               quantized=tf.reduce_sum(codewords_t, axis=1),
                               residuals=tf.stack(residuals, axis=1),
                               codewords=codewords_t)

    def get_config(self):
        return dict(super().get_config(), num_levels=self.num_levels,
                    codebook_size=self.codebook_size, latent_dim=self.latent_dim)
