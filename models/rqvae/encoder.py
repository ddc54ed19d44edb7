"""MLP encoder (E -> hidden_units... -> D) and decoder (D -> reversed hidden_units -> E).

hidden_units=() gives the paper's 1-layer encoder/decoder: a single (linear) Dense layer each way.
Hidden layers use ReLU; the last layer of each is linear. No dropout or noise anywhere, so the
encoder is deterministic.
"""
from typing import Sequence

import tensorflow as tf


class Mlp(tf.keras.layers.Layer):
    """Dense stack input_dim -> hidden_units... -> output_dim (ReLU between, linear last)."""

    def __init__(self, input_dim: int, hidden_units: Sequence[int], output_dim: int,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.output_dim = int(output_dim)
        units = self.hidden_units + (self.output_dim,)
        self.dense_layers = [
            tf.keras.layers.Dense(
                u, activation=("relu" if i < len(units) - 1 else None),
                kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed + i),
                name=f"dense_{i}")
            for i, u in enumerate(units)]
        # Build now so the variables exist before the first call (k-means init, export).
        self.build(tf.TensorShape([None, self.input_dim]))

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = shape[:-1].concatenate([layer.units])
        super().build(input_shape)

    def call(self, x):
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def get_config(self):
        return dict(super().get_config(), input_dim=self.input_dim,
                    hidden_units=list(self.hidden_units), output_dim=self.output_dim)


def make_encoder(embedding_dim: int, hidden_units: Sequence[int], latent_dim: int,
                 seed: int = 0) -> Mlp:
    """E -> hidden_units... -> D."""
    return Mlp(embedding_dim, hidden_units, latent_dim, seed=seed, name="encoder")


def make_decoder(latent_dim: int, hidden_units: Sequence[int], embedding_dim: int,
                 seed: int = 0) -> Mlp:
    """D -> reversed(hidden_units)... -> E (mirror of the encoder)."""
    return Mlp(latent_dim, tuple(reversed(tuple(hidden_units))), embedding_dim,
               seed=seed + 1000, name="decoder")
