"""Warm start: a ranking model's trainable weights saved in its Model artifact, and the rules for
carrying them into the next run's model (docs/continuous.md).

The exported SavedModel wraps Transform and the catalog, so it cannot be the restore point. The
Trainer writes `<model uri>/warm_start/` beside Format-Serving: `trainable_weights.npz` (every
trainable variable, in the model's order) and `model_config.json` (what the weights belong to:
the representation, the budget, the model shape and the SID space). The next run restores them
when nothing of that changed. Frozen tables are not trainable and are built from the new
catalog (dense_content's rows move when items are added). The optimizer and the learning-rate
schedule start afresh. random_hash with one row per catalog item keys its rows by catalog row, so
the rows are carried by item id (catalog_items.txt) to where the new catalog puts each item.
"""
import hashlib
import io
import json
import os
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models.ranking.catalog_lookup import CATALOG_ASSET
from models.ranking.config import RankingConfig
from schemas import artifact_layout, features

# The RankingConfig fields that decide the variables' meaning and shapes (not the training
# settings: dropout, learning rate, L2, epochs).
SHAPE_FIELDS = ("representation", "item_table_size", "user_hash_buckets", "embedding_dim",
                "hidden_units", "attention", "item_prior", "use_user_id", "user_rate_offset",
                "use_history", "history_length", "sid_length", "num_levels", "codebook_size")
SID_REPRESENTATIONS = (features.SID_NGRAM_1, features.SID_NGRAM_2, features.SID_PREFIX_NGRAM,
                       features.SID_SPM)
_LAYOUT = artifact_layout.RankingModelArtifact


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sid_lineage(transform_output: str, cfg: RankingConfig) -> Dict[str, Optional[str]]:
    """The SID space the model reads, from what CatalogTransform stored beside its graph: the
    sha256 of the RQ-VAE that coded the catalog and, for sid_spm, of the SentencePiece model of
    its budget (None where unknown)."""
    out: Dict[str, Optional[str]] = {"rqvae_sha256": None, "spm_sha256": None}
    meta_path = os.path.join(transform_output,
                             artifact_layout.TransformGraph.CATALOG_METADATA_FILE)
    if tf.io.gfile.exists(meta_path):
        with tf.io.gfile.GFile(meta_path) as f:
            space = json.load(f).get("sid_space") or {}
        out["rqvae_sha256"] = (space.get("rqvae") or {}).get("sha256")
    if cfg.representation == features.SID_SPM:
        spm = os.path.join(transform_output, artifact_layout.TransformGraph.SPM_MODELS_DIR,
                           artifact_layout.SpmModels.model_file(cfg.item_table_size))
        if tf.io.gfile.exists(spm):
            out["spm_sha256"] = _sha256(spm)
    return out


def model_config(cfg: RankingConfig, lineage: Dict[str, Optional[str]],
                 spans: Optional[Dict] = None) -> Dict:
    """model_config.json: the shape fields, the SID lineage, the catalog's size and the spans the
    model was trained and evaluated on (`trained_spans`; None without spans: not a reason to
    refuse)."""
    shape = {name: getattr(cfg, name) for name in SHAPE_FIELDS}
    shape["hidden_units"] = list(shape["hidden_units"])
    return {"shape": shape, "sid_lineage": dict(lineage), "spans": spans,
            "catalog_size": cfg.catalog_size}


def one_row_per_item(config: Dict) -> bool:
    """Whether a model_config's random_hash gives each catalog item its own row (its catalog
    row: representations.RandomHash)."""
    shape = config.get("shape", {})
    return (shape.get("representation") == features.RANDOM_HASH
            and 0 < int(config.get("catalog_size") or 0) < int(shape.get("item_table_size", 0)))


def catalog_items(transform_output: str) -> List[str]:
    """The catalog's item ids in row order: the catalog.tsv asset of the Transform graph."""
    path = os.path.join(transform_output, tft.TFTransformOutput.TRANSFORM_FN_DIR, "assets",
                        CATALOG_ASSET)
    with tf.io.gfile.GFile(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    items = [""] * len(rows)
    for item_id, row, *_ in rows:
        items[int(row)] = item_id
    return items


def carry_item_rows(weights: List[np.ndarray], base: Dict, base_items: List[str],
                    items: List[str]) -> List[np.ndarray]:
    """The base model's weights with random_hash's id-table rows (every variable of an
    `item_hash` table) moved from each item's base catalog row to its row in `items`; an item
    new to the catalog gets a zero row, as an untrained one."""
    where = {item: row for row, item in enumerate(items)}
    moves = [(old, where[item]) for old, item in enumerate(base_items) if item in where]
    old_rows, new_rows = (np.array(x, dtype=np.int64) for x in zip(*moves)) if moves else (
        np.zeros(0, np.int64), np.zeros(0, np.int64))
    out = list(weights)
    for i, (name, _) in enumerate(base.get("variables", [])):
        if "item_hash" in name:
            table = np.zeros_like(weights[i])
            table[new_rows] = weights[i][old_rows]
            out[i] = table
    return out


def trained_spans(transform_output: str) -> Optional[Dict]:
    """{"train": [...], "eval": N, and "replay": [...] when older spans were replayed} from the
    split summary CatalogTransform stored beside its graph; None when the examples were not split
    by span."""
    path = os.path.join(transform_output, artifact_layout.TransformGraph.SPLIT_SUMMARY_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        summary = json.load(f)
    layout = artifact_layout.InteractionExamples
    if summary.get(layout.EVAL_SPAN) is None:
        return None
    spans = {"train": summary[layout.TRAIN_SPANS], "eval": summary[layout.EVAL_SPAN]}
    if summary.get(layout.REPLAY_SPANS):  # a warm start's replayed older spans
        spans["replay"] = summary[layout.REPLAY_SPANS]
    return spans


def refusal_reasons(base: Dict, current: Dict) -> List[str]:
    """Why the base model's weights cannot be carried over ([] when they can): a changed
    representation, budget or model shape; for a representation that reads SIDs, another RQ-VAE
    (and for sid_spm another SentencePiece model) than the base model was trained on."""
    reasons = []
    base_shape, shape = base.get("shape", {}), current["shape"]
    for name in SHAPE_FIELDS:
        # A field added after the base model was written: it trained with the field's default.
        was = base_shape.get(name, getattr(RankingConfig(), name))
        if was != shape.get(name):
            what = {"representation": "the representation",
                    "item_table_size": "the table budget"}.get(name, f"the model shape ({name})")
            reasons.append(f"{what} changed: {was!r} -> {shape.get(name)!r}")
    if not reasons and one_row_per_item(base) != one_row_per_item(current):
        def rows(config):
            how = ("one row per catalog item" if one_row_per_item(config) else
                   "the id hashed into the budget")
            return f"{how} ({config.get('catalog_size') or 0} catalog items)"
        reasons.append(f"random_hash's rows changed meaning: {rows(base)} -> {rows(current)}")
    if not reasons and shape["representation"] in SID_REPRESENTATIONS:
        base_sids, sids = base.get("sid_lineage", {}), current["sid_lineage"]
        keys = ["rqvae_sha256"] + (["spm_sha256"] if shape["representation"] == features.SID_SPM
                                   else [])
        for key in keys:
            if base_sids.get(key) != sids.get(key):
                what = "RQ-VAE" if key == "rqvae_sha256" else "SentencePiece model"
                reasons.append(f"the SID space changed: another {what} than the base model was "
                               f"trained on (sha256 {str(base_sids.get(key))[:12]} -> "
                               f"{str(sids.get(key))[:12]})")
    return reasons


def save(model: tf.keras.Model, config: Dict, model_uri: str,
         items: Optional[List[str]] = None) -> str:
    """Writes <model_uri>/warm_start/{trainable_weights.npz, model_config.json} and, given the
    catalog's `items` in row order, catalog_items.txt; returns the folder."""
    folder = os.path.join(model_uri, _LAYOUT.WARM_START_DIR)
    tf.io.gfile.makedirs(folder)
    if items is not None:
        with tf.io.gfile.GFile(os.path.join(folder, _LAYOUT.CATALOG_ITEMS_FILE), "w") as f:
            f.write("".join(f"{item}\n" for item in items))
    weights = {f"w{i:04d}": v.numpy() for i, v in enumerate(model.trainable_variables)}
    buffer = io.BytesIO()  # np.savez seeks, which a GFile open for writing cannot
    np.savez(buffer, **weights)
    with tf.io.gfile.GFile(os.path.join(folder, _LAYOUT.WEIGHTS_FILE), "wb") as f:
        f.write(buffer.getvalue())
    config = dict(config, variables=[[v.name, list(v.shape)] for v in model.trainable_variables])
    with tf.io.gfile.GFile(os.path.join(folder, _LAYOUT.CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
    return folder


def base_folder(base_model_path: Optional[str]) -> Optional[str]:
    """The warm_start folder of a base model (FnArgs.base_model is its Format-Serving path)."""
    if not base_model_path:
        return None
    return os.path.join(os.path.dirname(base_model_path.rstrip("/")), _LAYOUT.WARM_START_DIR)


def read_config(folder: str) -> Optional[Dict]:
    path = os.path.join(folder, _LAYOUT.CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def read_catalog_items(folder: str) -> Optional[List[str]]:
    path = os.path.join(folder, _LAYOUT.CATALOG_ITEMS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return f.read().split("\n")[:-1]


def load_carried(folder: str, base: Dict, items: Optional[List[str]]) -> List[np.ndarray]:
    """The base model's weights for a model over the catalog `items` (item ids in row order;
    None where its random_hash does not key rows by catalog row): random_hash's rows carried
    by item id where the base model keyed them by catalog row."""
    weights = load_weights(folder)
    if items is not None and one_row_per_item(base):
        weights = carry_item_rows(weights, base, read_catalog_items(folder), items)
    return weights


def load_weights(folder: str) -> List[np.ndarray]:
    with tf.io.gfile.GFile(os.path.join(folder, _LAYOUT.WEIGHTS_FILE), "rb") as f:
        data = np.load(io.BytesIO(f.read()))
    return [data[k] for k in sorted(data.files)]


def restore(model: tf.keras.Model, weights: List[np.ndarray]) -> None:
    """Assigns `weights` to the model's trainable variables (built beforehand), in order;
    ValueError when their number or shapes differ."""
    variables = model.trainable_variables
    if len(variables) != len(weights):
        raise ValueError(f"warm start: the base model has {len(weights)} trainable variables, "
                         f"this model {len(variables)}")
    for v, w in zip(variables, weights):
        if tuple(v.shape) != tuple(w.shape):
            raise ValueError(f"warm start: variable {v.name} has shape {tuple(v.shape)}, the "
                             f"base model's {tuple(w.shape)}")
    for v, w in zip(variables, weights):
        v.assign(w)
