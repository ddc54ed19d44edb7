"""TFX Trainer module: trains the TFRS ranking model and exports it for TF Serving.

The Trainer's `custom_config` carries a RankingConfig (models/ranking/config.py); train split = features.TRAIN, eval split (early stopping) = VALIDATION.
"""
import json
import logging
import os
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models.ranking import model as model_lib
from models.ranking.config import RankingConfig
from models.ranking import representations
from models.ranking import signatures
from schemas import artifact_layout, features
from models.ranking.warmup import write_warmup_requests


def _dataset(fn_args, file_pattern, tf_transform_output, batch_size, shuffle):
    return fn_args.data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1, shuffle=shuffle),
        tf_transform_output.transformed_metadata.schema)


def build_model(cfg: RankingConfig,
                catalog_embeddings: Optional[np.ndarray] = None) -> model_lib.RankingModel:
    """The ranking model of a RankingConfig."""
    options = representations.RepresentationOptions(
        table_budget=cfg.item_table_size, embedding_dim=cfg.embedding_dim,
        sid_length=cfg.sid_length, codebook_size=cfg.codebook_size,
        catalog_embeddings=catalog_embeddings)
    model = model_lib.RankingModel(
        representation=cfg.representation, options=options,
        user_hash_buckets=cfg.user_hash_buckets, hidden_units=list(cfg.hidden_units),
        dropout=cfg.dropout, use_history=cfg.use_history, attention=cfg.attention,
        item_prior=cfg.item_prior, use_user_id=cfg.use_user_id, l2=cfg.l2,
        cold_start_dropout=cfg.cold_start_dropout)
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
                catalog_embeddings: Optional[np.ndarray] = None) -> Tuple[model_lib.RankingModel, dict]:
    """Builds and fits the ranking model with early stopping on validation AUC; returns the model
    (best epoch's weights) and a summary. Shared by run_fn and the experiment runner."""
    tf.keras.utils.set_random_seed(cfg.seed)
    model = build_model(cfg, catalog_embeddings)
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
               "item_table_rows": int(model.item_representation.table_rows)}
    return model, summary


def run_fn(fn_args: tfx.components.FnArgs):
    cfg = RankingConfig.from_custom_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    batch_size = cfg.batch_size
    # The seed fixes the shuffling order (set before the datasets are built) and, again in
    # train_model, the initialisation.
    tf.keras.utils.set_random_seed(cfg.seed)
    train_ds = _dataset(fn_args, fn_args.train_files, tf_transform_output, batch_size, True)
    val_ds = _dataset(fn_args, fn_args.eval_files, tf_transform_output, batch_size, False)

    catalog_embeddings = load_catalog_embeddings(fn_args.transform_output)
    model, summary = train_model(cfg, train_ds, val_ds, log_dir=fn_args.model_run_dir,
                                 catalog_embeddings=catalog_embeddings)
    logging.info("Trainer: %s", json.dumps({k: v for k, v in summary.items() if k != "history"}))
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    budget = cfg.item_table_size
    spm_model = None
    if cfg.representation == features.SID_SPM:
        spm_model = os.path.join(fn_args.transform_output,
                                 artifact_layout.TransformGraph.SPM_MODELS_DIR,
                                 artifact_layout.SpmModels.model_file(budget))
    sigs = signatures.make_serving_signatures(
        model, tf_transform_output, cfg.history_length,
        sid_length=cfg.sid_length if catalog_embeddings is not None else 0,
        embedding_dim=0 if catalog_embeddings is None else int(catalog_embeddings.shape[1]),
        codebook_size=cfg.codebook_size, spm_model_path=spm_model,
        spm_budget=budget)
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=sigs)
    # TF Serving replays these before it reports the model AVAILABLE (and so does semids serve).
    write_warmup_requests(fn_args.serving_model_dir)
