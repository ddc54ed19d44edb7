"""RqVae: encoder -> residual quantizer -> decoder, trained with a custom train_step.

- Codebooks are initialised by k-means on the first batch, level by level
  (`initialize_codebooks`): level 1 on the encoded batch, quantize, level 2 on the residuals, ...
- Dead-code reset: `last_used[l, k]` holds the last training step at which code k of level l was
  picked. After each step's update, codes unused for `dead_code_window` steps are re-initialised
  to random residuals of the current batch at that level (and get a fresh window). The paper
  resets unused codes every step; dead_code_window=1 is that; 0 (or None) turns resets off.
- `encode` / `encode_with_error` are deterministic (no dropout, no noise).
"""
import collections
from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from models.rqvae import encoder as encoder_lib
from models.rqvae import kmeans as kmeans_lib
from models.rqvae import losses as losses_lib
from models.rqvae import quantizer as quantizer_lib
from schemas import features

RqVaeOutput = collections.namedtuple(
    "RqVaeOutput",
    ["latent",          # z [B, D]
     "codes",           # int64 [B, L]
     "quantized",       # z_q [B, D] (sum of the chosen codewords)
     "reconstruction",  # decoder(z + sg(z_q - z)) [B, E]
     "residuals",       # [B, L, D]
     "codewords"])      # [B, L, D]


class RqVae(tf.keras.Model):

    def __init__(self, embedding_dim: int, latent_dim: int, num_levels: int, codebook_size: int,
                 hidden_units: Sequence[int] = (), beta: float = 0.25,
                 dead_code_window: int = 20, seed: int = 0, **kwargs):
        kwargs.setdefault("name", "rqvae")
        super().__init__(**kwargs)
        self.embedding_dim = int(embedding_dim)
        self.latent_dim = int(latent_dim)
        self.num_levels = int(num_levels)
        self.codebook_size = int(codebook_size)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.beta = float(beta)
        self.dead_code_window = int(dead_code_window or 0)
        self.seed = int(seed)

        self.encoder = encoder_lib.make_encoder(embedding_dim, self.hidden_units, latent_dim, seed)
        self.quantizer = quantizer_lib.ResidualQuantizer(num_levels, codebook_size, latent_dim,
                                                         seed=seed)
        self.decoder = encoder_lib.make_decoder(latent_dim, self.hidden_units, embedding_dim, seed)

        # Dead-code bookkeeping (not trained; saved with the model).
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.last_used = tf.Variable(tf.zeros([self.num_levels, self.codebook_size], tf.int64),
                                     trainable=False, name="last_used")
        self.codebooks_initialized = tf.Variable(False, trainable=False,
                                                 name="codebooks_initialized")
        self._reset_rng = tf.random.Generator.from_seed(self.seed + 7919)

        self._trackers = {name: tf.keras.metrics.Mean(name=name)
                          for name in ("loss", "reconstruction", "codebook", "commitment")}
        self._trackers["dead_codes_reset"] = tf.keras.metrics.Sum(name="dead_codes_reset")

    # --- forward -------------------------------------------------------------------------
    @property
    def codebooks(self):
        return self.quantizer.codebooks

    def forward(self, embeddings, training: bool = False) -> RqVaeOutput:
        z = self.encoder(embeddings, training=training)
        q = self.quantizer(z)
        reconstruction = self.decoder(quantizer_lib.straight_through(z, q.quantized),
                                      training=training)
        return RqVaeOutput(latent=z, codes=q.codes, quantized=q.quantized,
                           reconstruction=reconstruction, residuals=q.residuals,
                           codewords=q.codewords)

    def call(self, embeddings, training=False):
        out = self.forward(embeddings, training=training)
        return {features.RQVAE_CODES_OUTPUT: out.codes, "reconstruction": out.reconstruction}

    def encode(self, embeddings) -> tf.Tensor:
        """Semantic ID codes, int64 [B, L]. Deterministic."""
        return self.quantizer(self.encoder(tf.convert_to_tensor(embeddings, tf.float32))).codes

    def encode_with_error(self, embeddings):
        """(codes int64 [B, L], reconstruction_error float32 [B]): the per-item mean squared
        error between the embedding and the decoder's reconstruction of the quantized latent."""
        x = tf.convert_to_tensor(embeddings, tf.float32)
        q = self.quantizer(self.encoder(x))
        x_hat = self.decoder(q.quantized)
        return q.codes, tf.reduce_mean(tf.square(x - x_hat), axis=1)

    # --- codebook init -----------------------------------------------------------------------
    def initialize_codebooks(self, embeddings, kmeans_iters: int = 10) -> None:
        """k-means init of every level from one batch: level 1 on the encoded batch, then each
        next level on the residuals left by the levels before it."""
        residual = self.encoder(tf.convert_to_tensor(embeddings, tf.float32)).numpy()
        for level, codebook in enumerate(self.quantizer.codebooks):
            centroids = kmeans_lib.kmeans(residual, self.codebook_size, num_iters=kmeans_iters,
                                          seed=self.seed + level).centroids
            codebook.assign(centroids)
            code = quantizer_lib.nearest_code(tf.constant(residual), codebook).numpy()
            residual = residual - centroids[code]
        self.codebooks_initialized.assign(True)
        self.last_used.assign(tf.fill(tf.shape(self.last_used), self.step.read_value()))

    # --- training ----------------------------------------------------------------------------
    @property
    def metrics(self):
        return list(self._trackers.values())

    def _embeddings_of(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        if isinstance(data, dict):
            data = data[features.ITEM_EMBEDDING]
        return tf.cast(data, tf.float32)

    def reset_dead_codes(self, codes: tf.Tensor, residuals: tf.Tensor) -> tf.Tensor:
        """Marks this step's codes as used and re-initialises codes unused for dead_code_window
        steps to random residuals of this batch at their level: distinct rows while there are
        enough (a random permutation of the batch), plus gaussian noise of 1e-3 x the residuals'
        std so that no two codewords are equal. Returns how many codes were reset."""
        step = self.step.read_value()
        batch = tf.shape(codes, out_type=tf.int64)[0]
        new_last, num_reset = [], tf.constant(0, tf.int64)
        for level, codebook in enumerate(self.quantizer.codebooks):
            hits = tf.math.unsorted_segment_sum(tf.ones_like(codes[:, level]), codes[:, level],
                                                self.codebook_size)
            last = tf.where(hits > 0, step, self.last_used[level])
            if self.dead_code_window > 0:
                dead = (step - last) >= self.dead_code_window
                dead_idx = tf.where(dead)  # [n_dead, 1]; the work below scales with n_dead
                n_dead = tf.shape(dead_idx, out_type=tf.int64)[0]
                level_residuals = tf.stop_gradient(residuals[:, level])
                perm = tf.argsort(self._reset_rng.uniform(tf.reshape(batch, [1])))
                picked = tf.gather(level_residuals,
                                   tf.gather(perm, tf.math.floormod(tf.range(n_dead), batch)))
                noise = self._reset_rng.normal(tf.shape(picked)) * 1e-3 * tf.math.reduce_std(
                    level_residuals)
                codebook.scatter_nd_update(dead_idx, picked + noise)
                last = tf.where(dead, step, last)
                num_reset += n_dead
            new_last.append(last)
        self.last_used.assign(tf.stack(new_last))
        return num_reset

    def train_step(self, data) -> Dict[str, tf.Tensor]:
        x = self._embeddings_of(data)
        self.step.assign_add(1)
        with tf.GradientTape() as tape:
            out = self.forward(x, training=True)
            loss = losses_lib.rqvae_loss(x, out.reconstruction, out.residuals, out.codewords,
                                         self.beta)
        variables = self.trainable_variables
        grads = tape.gradient(loss.loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        num_reset = self.reset_dead_codes(out.codes, out.residuals)
        for name, value in loss._asdict().items():
            self._trackers[name].update_state(value)
        self._trackers["dead_codes_reset"].update_state(num_reset)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data) -> Dict[str, tf.Tensor]:
        x = self._embeddings_of(data)
        out = self.forward(x, training=False)
        loss = losses_lib.rqvae_loss(x, out.reconstruction, out.residuals, out.codewords,
                                     self.beta)
        for name, value in loss._asdict().items():
            self._trackers[name].update_state(value)
        return {name: self._trackers[name].result() for name in loss._fields}

    def get_config(self):
        return dict(embedding_dim=self.embedding_dim, latent_dim=self.latent_dim,
                    num_levels=self.num_levels, codebook_size=self.codebook_size,
                    hidden_units=list(self.hidden_units), beta=self.beta,
                    dead_code_window=self.dead_code_window, seed=self.seed)


# --- catalog statistics of a set of codes -----------------------------------------------------
def utilisation(codes: np.ndarray, codebook_size: int) -> list:
    """Per level: share of the K codes used by at least one item."""
    codes = np.asarray(codes)
    return [float(np.unique(codes[:, l]).size) / codebook_size for l in range(codes.shape[1])]


# Above this many items prefix_cosine uses a seeded sample of this many (as the SID report does):
# the means are pinned to ~3 decimals, and float copies of 1M x 384 embeddings cost GBs.
PREFIX_COSINE_MAX_ITEMS = 100_000


def prefix_cosine(embeddings: np.ndarray, codes: np.ndarray,
                  max_items: int = PREFIX_COSINE_MAX_ITEMS, seed: int = 0) -> list:
    """For prefix length p = 1..L: mean cosine similarity over pairs of distinct items sharing
    their first p codes (None where no two items share a prefix); index 0 is p = 1. Over all
    items up to max_items, else over a seeded sample of max_items items."""
    codes = np.asarray(codes)
    if codes.shape[0] > max_items:
        rows = np.sort(np.random.default_rng(seed).choice(codes.shape[0], size=max_items,
                                                          replace=False))
        embeddings, codes = np.asarray(embeddings)[rows], codes[rows]
    x = np.array(embeddings, dtype=np.float32)  # our own copy: normalised in place
    x /= np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)), 1e-12)[:, None]
    out = []
    for p in range(1, codes.shape[1] + 1):
        _, group = np.unique(codes[:, :p], axis=0, return_inverse=True)
        group = group.reshape(-1)
        order = np.argsort(group, kind="stable")
        n = np.bincount(group).astype(np.float64)
        starts = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
        sums = np.add.reduceat(x[order], starts, axis=0, dtype=np.float64)
        pair_sum = np.sum(sums * sums, axis=1) - n  # sum over ordered pairs i != j of cos
        pairs = n * (n - 1)
        out.append(float(pair_sum.sum() / pairs.sum()) if pairs.sum() > 0 else None)
    return out


def unique_sid_fraction(codes: np.ndarray) -> float:
    codes = np.asarray(codes)
    return float(np.unique(codes, axis=0).shape[0]) / max(codes.shape[0], 1)
