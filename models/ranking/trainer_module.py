"""TFX Trainer module: trains the TFRS ranking model and exports it for TF Serving.

The Trainer's `custom_config` carries the model options from the RunConfig (see
pipeline/pipeline.py); train split = features.TRAIN, eval split (early stopping) = VALIDATION.
"""
import json
import logging
import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models.ranking import model as model_lib
from models.ranking import signatures
from pipeline import features


def _dataset(fn_args, file_pattern, tf_transform_output, batch_size, shuffle):
    return fn_args.data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1, shuffle=shuffle,
                                       shuffle_seed=0 if shuffle else None),
        tf_transform_output.transformed_metadata.schema)


def build_model(cfg: dict) -> model_lib.RankingModel:
    model = model_lib.RankingModel(
        representation=cfg["representation"],
        item_table_size=int(cfg["item_table_size"]),
        user_hash_buckets=int(cfg["user_hash_buckets"]),
        embedding_dim=int(cfg["embedding_dim"]),
        hidden_units=[int(u) for u in cfg["hidden_units"]],
        dropout=float(cfg["dropout"]))
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=float(cfg["learning_rate"])))
    return model


def run_fn(fn_args: tfx.components.FnArgs):
    cfg = fn_args.custom_config
    tf.keras.utils.set_random_seed(int(cfg.get("seed", 0)))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    batch_size = int(cfg["batch_size"])
    train_ds = _dataset(fn_args, fn_args.train_files, tf_transform_output, batch_size, True)
    val_ds = _dataset(fn_args, fn_args.eval_files, tf_transform_output, batch_size, False)

    model = build_model(cfg)
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=int(cfg["max_epochs"]), verbose=2,
        callbacks=[
            tf.keras.callbacks.EarlyStopping(
                monitor="val_auc", mode="max", patience=int(cfg["early_stopping_patience"]),
                restore_best_weights=True),
            tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
        ])
    best_epoch = max(range(len(history.history["val_auc"])), key=history.history["val_auc"].__getitem__)
    summary = {"epochs_run": len(history.history["val_auc"]), "best_epoch": best_epoch + 1,
               "best_val_auc": float(history.history["val_auc"][best_epoch]),
               "history": {k: [float(x) for x in v] for k, v in history.history.items()},
               "item_table_rows": int(model.item_representation.table_rows)}
    logging.info("Trainer: %s", json.dumps({k: v for k, v in summary.items() if k != "history"}))
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    sigs = signatures.make_serving_signatures(model, tf_transform_output, int(cfg["history_length"]))
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=sigs)
