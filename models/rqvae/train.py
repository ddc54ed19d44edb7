"""train_rqvae: trains an RqVae on an in-memory [N, E] array of item embeddings (no TFX).

The training items are held in memory (at most cfg.max_train_items of the catalog: the Trainer
module samples them, trainer_module.load_sample) and reshuffled every epoch; the codebooks are initialised by
k-means on the first shuffled batch. RqVae.train_step is the step (model.fit works too); the loop
here only avoids fit()'s per-epoch overhead. Training stops at cfg.epochs, or earlier once the
epoch loss stops improving (`Convergence`), and logs a progress line at least every 30 s.
"""
import collections
import logging
import time

import numpy as np
import tensorflow as tf

from models import progress
from models.rqvae import model as model_lib
from models.rqvae.config import RqVaeConfig

TrainResult = collections.namedtuple("TrainResult", ["model", "summary", "codes"])

PROGRESS_INTERVAL_S = 30.0
MONITOR = "reconstruction"  # the metric early stopping watches (see Convergence)


class Convergence:
    """Early stopping on the epoch's reconstruction loss (as Keras' EarlyStopping): stop after
    min_epochs once `patience` epochs in a row did not lower the best loss by a relative
    min_improvement. A slow, steady improvement is improvement: the best moves only by more than
    min_improvement, so small gains add up until they count.

    Not the total loss: its codebook and commitment terms grow while the encoder spreads the
    latents and reconstruction still improves (ML-100K: the total is lowest at epoch ~40,
    reconstruction still falls at 200)."""

    def __init__(self, min_epochs: int, patience: int, min_improvement: float):
        self.min_epochs, self.patience, self.min_improvement = min_epochs, patience, min_improvement
        self.best = float("inf")
        self.stale = 0
        self.epochs = 0

    def update(self, loss: float) -> bool:
        """Records an epoch's loss; True when training should stop."""
        self.epochs += 1
        if loss < self.best * (1.0 - self.min_improvement):
            self.best, self.stale = loss, 0
        else:
            self.stale += 1
        return self.epochs >= self.min_epochs and self.stale >= self.patience


def _progress_line(rows: int, epoch: int, epochs: int, loss: float, elapsed_s: float) -> str:
    return progress.progress_line(
        "RqVaeTrainer", f"embeddings trained on, epoch {epoch} of at most {epochs}, "
        f"loss {loss:.5f}", rows, elapsed_s)


def build_model(cfg: RqVaeConfig, embedding_dim: int) -> model_lib.RqVae:
    model = model_lib.RqVae(embedding_dim=embedding_dim, latent_dim=cfg.latent_dim,
                            num_levels=cfg.num_levels, codebook_size=cfg.codebook_size,
                            hidden_units=cfg.hidden_units, beta=cfg.beta,
                            dead_code_window=cfg.dead_code_window, seed=cfg.seed)
    # jit_compile=False: the optimizer's default XLA compile only adds start-up time on CPU.
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate,
                                                     jit_compile=False))
    return model


def encode_all(model: model_lib.RqVae, embeddings: np.ndarray, batch_size: int = 4096):
    """(codes int64 [N, L], reconstruction_error float32 [N]) over the whole array."""
    fn = tf.function(model.encode_with_error, autograph=False,
                     input_signature=[tf.TensorSpec([None, embeddings.shape[1]], tf.float32)])
    codes, errors = [], []
    for i in range(0, embeddings.shape[0], batch_size):
        c, e = fn(tf.constant(embeddings[i:i + batch_size]))
        codes.append(c.numpy())
        errors.append(e.numpy())
    return np.concatenate(codes), np.concatenate(errors)


def _loss(model) -> float:
    return next(float(m.result().numpy()) for m in model.metrics if m.name == "loss")


def train_rqvae(embeddings: np.ndarray, cfg: RqVaeConfig, verbose: int = 0,
                steps_per_epoch=None, summarize: bool = True) -> TrainResult:
    """Trains for at most cfg.epochs epochs (early stopping: `Convergence`); returns the model, a
    JSON-able summary and the codes of `embeddings`.

    steps_per_epoch: None = whole catalog per epoch (a smaller number is for benchmarks).
    summarize: False skips encoding the catalog afterwards (codes None, no catalog statistics).
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = embeddings.shape
    if cfg.embedding_dim is not None and cfg.embedding_dim != dim:
        raise ValueError(f"embedding_dim {cfg.embedding_dim} in config, {dim} in the data")
    tf.keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.time()
    model = build_model(cfg, dim)
    batch_size = min(cfg.batch_size, n)
    model.initialize_codebooks(embeddings[rng.permutation(n)[:batch_size]])
    t_init = time.time() - t0

    # A plain loop over in-memory batches: Keras fit() costs ~35 ms per epoch on 2 cores, more
    # than a whole epoch of a 1.7k-item catalog. One trace for every batch size.
    step_fn = tf.function(model.train_step, autograph=False,
                          input_signature=[tf.TensorSpec([None, dim], tf.float32)])
    t_trace = time.time()
    step_fn.get_concrete_function()
    trace_seconds = time.time() - t_trace
    history = {m.name: [] for m in model.metrics}
    convergence = Convergence(cfg.min_epochs, cfg.patience, cfg.min_improvement)
    stopped_early = False
    t1 = last_log = time.time()
    rows_done = 0
    for epoch in range(1, cfg.epochs + 1):
        order = rng.permutation(n)
        starts = range(0, n, batch_size)
        if steps_per_epoch is not None:
            starts = [(i * batch_size) % n for i in range(steps_per_epoch)]
        for m in model.metrics:
            m.reset_state()
        for s in starts:
            batch = embeddings[order[s:s + batch_size]]
            step_fn(tf.constant(batch))
            rows_done += batch.shape[0]
            if time.time() - last_log >= PROGRESS_INTERVAL_S:
                last_log = time.time()
                logging.getLogger(progress.PROGRESS_LOGGER).info(_progress_line(
                    rows_done, epoch, cfg.epochs, _loss(model), last_log - t1))
        for m in model.metrics:
            history[m.name].append(float(m.result().numpy()))
        if verbose:
            print(f"epoch {len(history['loss'])}: " +
                  " ".join(f"{k}={v[-1]:.4f}" for k, v in history.items()), flush=True)
        if convergence.update(history[MONITOR][-1]):
            stopped_early = epoch < cfg.epochs
            break
    fit_seconds = time.time() - t1
    epochs_run = len(history["loss"])
    summary = {
        "num_items": int(n),
        "embedding_dim": int(dim),
        "config": cfg.to_dict(),
        "epochs": int(epochs_run),  # run (cfg.epochs at most)
        "stopped_early": bool(stopped_early),
        "best_loss": float(convergence.best),
        "steps": int(model.step.numpy()),
        "losses_per_epoch": history,
        "init_seconds": t_init,  # model build + k-means init
        "trace_seconds": trace_seconds,  # tracing the train step (once)
        "fit_seconds": fit_seconds,
        "seconds_per_epoch": fit_seconds / max(epochs_run, 1),  # training steps only
    }
    codes = None
    if summarize:
        codes, errors = encode_all(model, embeddings)
        summary.update({
            "final_reconstruction_mse": float(errors.mean()),
            "utilisation_per_level": model_lib.utilisation(codes, cfg.codebook_size),
            "unique_sid_fraction": model_lib.unique_sid_fraction(codes),
            "prefix_cosine": model_lib.prefix_cosine(embeddings, codes),
        })
    summary["seconds"] = time.time() - t0
    return TrainResult(model, summary, codes)
