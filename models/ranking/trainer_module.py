"""TFX Trainer module: trains the TFRS ranking model (models/ranking/training.py) and exports it
for TF Serving (signatures.py, warmup.py).

The Trainer's `custom_config` carries a RankingConfig (models/ranking/config.py); train split =
features.TRAIN, eval split (early stopping) = VALIDATION.
"""
import json
import logging
import os
from typing import List, Optional

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.public import tfxio

from models.ranking import inputs, representations, signatures, warm_start
from models.ranking.config import RankingConfig
from models.ranking.model import LABEL_KEY
from models.ranking.training import load_catalog_embeddings, train_model, with_catalog
from models.ranking.warmup import write_warmup_requests
from schemas import artifact_layout, features


# A split whose model inputs fit in this many bytes (compact, models/ranking/inputs.py) is read
# once and trained on from memory; a larger one is streamed from the Transform output every epoch.
IN_MEMORY_MAX_BYTES = 4 << 30
# Rows per batch when a split is read into memory (no effect on training's batch_size).
READ_BATCH_SIZE = 8192


def _model_schema(schema: schema_pb2.Schema, names) -> schema_pb2.Schema:
    """The transformed schema cut to `names`: the Transform output also holds every other
    representation's inputs (all SentencePiece budgets, SIDs, catalog rows), which need not be
    parsed."""
    kept = schema_pb2.Schema()
    kept.CopyFrom(schema)
    del kept.feature[:]
    names = set(names)
    kept.feature.extend(f for f in schema.feature if f.name in names)
    return kept


def _dataset(fn_args, file_pattern, schema, batch_size, shuffle_seed):
    """The split's batches: from memory when they fit (reshuffled every epoch with
    shuffle_seed, or in order when it is None), else streamed from the files."""
    def stream(batch, shuffle):
        return fn_args.data_accessor.tf_dataset_factory(
            file_pattern,
            tfxio.TensorFlowDatasetOptions(batch_size=batch, num_epochs=1, shuffle=shuffle),
            schema)
    arrays = inputs.read_into_memory(stream(READ_BATCH_SIZE, False), IN_MEMORY_MAX_BYTES)
    if arrays is None:
        logging.info("Trainer: streaming %s (its model inputs pass %d bytes)", file_pattern,
                     IN_MEMORY_MAX_BYTES)
        return stream(batch_size, shuffle_seed is not None)
    return inputs.make_dataset(arrays, batch_size, shuffle_seed)


def run_fn(fn_args: tfx.components.FnArgs):
    cfg = RankingConfig.from_custom_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    batch_size = cfg.batch_size
    # The seed fixes the shuffling order (set before the datasets are built) and, again in
    # train_model, the initialisation.
    tf.keras.utils.set_random_seed(cfg.seed)
    schema = _model_schema(tf_transform_output.transformed_metadata.schema,
                           (LABEL_KEY,) + representations.model_input_keys(
                               cfg.representation, cfg.item_table_size, cfg.use_history,
                               cfg.use_user_id))
    train_ds = _dataset(fn_args, fn_args.train_files, schema, batch_size, cfg.seed)
    val_ds = _dataset(fn_args, fn_args.eval_files, schema, batch_size, None)

    catalog_embeddings = load_catalog_embeddings(fn_args.transform_output)
    cfg = with_catalog(cfg, catalog_embeddings)
    what = (f"representation {cfg.representation}, table budget {cfg.item_table_size}, "
            f"{0 if catalog_embeddings is None else catalog_embeddings.shape[0]:,} catalog items")
    this_model = warm_start.model_config(
        cfg, warm_start.sid_lineage(fn_args.transform_output, cfg),
        warm_start.trained_spans(fn_args.transform_output))
    items = (warm_start.catalog_items(fn_args.transform_output)
             if warm_start.one_row_per_item(this_model) else None)
    initial_weights, warm = warm_start_weights(getattr(fn_args, "base_model", None), this_model,
                                               items)
    try:
        model, summary = train_model(cfg, train_ds, val_ds, log_dir=fn_args.model_run_dir,
                                     catalog_embeddings=catalog_embeddings,
                                     initial_weights=initial_weights)
    except (ValueError, tf.errors.OpError, MemoryError) as e:
        raise RuntimeError(f"Trainer ({what}): training failed: {type(e).__name__}: {e}") from e
    summary["warm_start"] = warm
    summary["spans"] = this_model["spans"]
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
        spm_budget=budget, representation=cfg.representation, num_levels=cfg.num_levels)
    export_model(model, fn_args.serving_model_dir, sigs, what)
    # The next run's restore point, beside Format-Serving (the Pusher copies only that).
    warm_start.save(model, this_model, os.path.dirname(fn_args.serving_model_dir.rstrip("/")),
                    items)


def warm_start_weights(base_model: Optional[str], this_model: dict,
                       items: Optional[List[str]] = None):
    """(the base model's trainable weights or None, what happened) for FnArgs.base_model: None
    when there is no base model, or when the base model's model_config.json says its weights do
    not fit this model (the reasons are logged, and training starts from scratch). `items`: the
    catalog's item ids in row order, where random_hash has one row per item (its rows are then
    carried by item id)."""
    folder = warm_start.base_folder(base_model)
    if folder is None:
        return None, {"base_model": None, "restored": False, "refused": [],
                      "base_model_spans": None}
    base = warm_start.read_config(folder)
    reasons = (warm_start.refusal_reasons(base, this_model) if base is not None else
               [f"the base model has no {artifact_layout.RankingModelArtifact.CONFIG_FILE}"])
    if not reasons and items is not None and warm_start.read_catalog_items(folder) is None:
        reasons = [f"the base model's random_hash rows are catalog rows and it has no "
                   f"{artifact_layout.RankingModelArtifact.CATALOG_ITEMS_FILE}"]
    if reasons:
        logging.warning("Trainer: not warm-starting from %s, training from scratch: %s",
                        base_model, "; ".join(reasons))
        return None, {"base_model": base_model, "restored": False, "refused": reasons,
                      "base_model_spans": (base or {}).get("spans")}
    logging.info("Trainer: warm-starting from %s", base_model)
    return warm_start.load_carried(folder, base, items), {
        "base_model": base_model, "restored": True, "refused": [],
        "base_model_spans": base.get("spans")}


def export_model(model: tf.keras.Model, serving_model_dir: str, sigs, what: str) -> None:
    """Saves the SavedModel with its warm-up requests (TF Serving replays them before it
    reports the model AVAILABLE, and so does semids serve). On failure it removes the partial
    folder and raises a RuntimeError that names the Trainer, `what` it exported, and the cause."""
    try:
        model.save(serving_model_dir, save_format="tf", signatures=sigs)
        write_warmup_requests(serving_model_dir)
    except Exception as e:  # any failure leaves no half-written model for a Pusher to find
        if tf.io.gfile.exists(serving_model_dir):
            tf.io.gfile.rmtree(serving_model_dir)
        hint = ""
        if "exceeds maximum protobuf size" in str(e):
            hint = (" A SavedModel's graph and Keras metadata must stay under protobuf's 2 GB: "
                    "a large array went into the model's graph or a layer's config instead of "
                    "a variable.")
        raise RuntimeError(f"Trainer ({what}): exporting the SavedModel to {serving_model_dir} "
                           f"failed: {type(e).__name__}: {e}.{hint} The partial model folder "
                           f"was removed.") from e
