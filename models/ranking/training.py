"""Building and fitting the ranking model: what a training run computes, shared by the TFX
Trainer (trainer_module.py, which also exports) and the experiment runner. The experiment's
results.csv keys its rows by this module's code (pipeline/experiment/results.config_key), so a
change to export code alone (signatures, warm-up) does not orphan finished rows."""
import dataclasses
import os
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from models.ranking import model as model_lib
from models.ranking import representations, warm_start
from models.ranking.config import RankingConfig
from schemas import artifact_layout


def with_catalog(cfg: RankingConfig, catalog_embeddings: Optional[np.ndarray]) -> RankingConfig:
    """`cfg` for a model over this catalog: with the catalog's size (the item side's, like its
    SID shape; a run's custom_config cannot hold it, the run builds the catalog)."""
    if catalog_embeddings is None:
        return cfg
    return dataclasses.replace(cfg, catalog_size=int(catalog_embeddings.shape[0]))


def build_model(cfg: RankingConfig,
                catalog_embeddings: Optional[np.ndarray] = None) -> model_lib.RankingModel:
    """The ranking model of a RankingConfig over the catalog of `catalog_embeddings` (None: no
    catalog)."""
    cfg = with_catalog(cfg, catalog_embeddings)
    options = representations.RepresentationOptions(
        table_budget=cfg.item_table_size, embedding_dim=cfg.embedding_dim,
        sid_length=cfg.sid_length, codebook_size=cfg.codebook_size,
        catalog_embeddings=catalog_embeddings, catalog_size=cfg.catalog_size)
    model = model_lib.RankingModel(
        representation=cfg.representation, options=options,
        user_hash_buckets=cfg.user_hash_buckets, hidden_units=list(cfg.hidden_units),
        dropout=cfg.dropout, use_history=cfg.use_history, attention=cfg.attention,
        item_prior=cfg.item_prior, use_user_id=cfg.use_user_id, l2=cfg.l2,
        cold_start_dropout=cfg.cold_start_dropout, user_rate_offset=cfg.user_rate_offset)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate))
    return model


def load_catalog_embeddings(transform_output: str) -> Optional[np.ndarray]:
    """The content embeddings CatalogTransform stored beside its graph (row-aligned with the
    catalog rows the graph emits), or None when the run has no catalog."""
    path = os.path.join(transform_output,
                        artifact_layout.TransformGraph.CATALOG_EMBEDDINGS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        return np.load(f)


def train_model(cfg: RankingConfig, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset,
                log_dir: Optional[str] = None, verbose: int = 2,
                catalog_embeddings: Optional[np.ndarray] = None,
                initial_weights: Optional[List[np.ndarray]] = None,
                ) -> Tuple[model_lib.RankingModel, dict]:
    """Builds and fits the ranking model with early stopping on validation AUC; returns the model
    (best epoch's weights) and a summary. Shared by run_fn and the experiment runner.
    initial_weights: trainable weights to start from (a warm start, models/ranking/warm_start.py)
    instead of the seeded initialisation; the optimizer starts afresh."""
    tf.keras.utils.set_random_seed(cfg.seed)
    model = build_model(cfg, catalog_embeddings)
    if initial_weights is not None:
        for batch in train_ds.take(1):  # builds the variables
            model(batch)
        warm_start.restore(model, initial_weights)
    callbacks = [tf.keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=cfg.early_stopping_patience,
        restore_best_weights=True),
        tf.keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.5,
                                             patience=cfg.lr_patience, min_lr=1e-5)]
    if log_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=log_dir))
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.max_epochs,
                        verbose=verbose, callbacks=callbacks)
    val_auc = history.history["val_auc"]
    best_epoch = max(range(len(val_auc)), key=val_auc.__getitem__)
    summary = {"epochs_run": len(val_auc), "best_epoch": best_epoch + 1,
               "best_val_auc": float(val_auc[best_epoch]),
               "history": {k: [float(x) for x in v] for k, v in history.history.items()},
               "item_table_rows": int(model.item_representation.table_rows),
               "warm_started": initial_weights is not None}
    return model, summary
