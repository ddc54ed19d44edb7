"""In-process evaluation, shared by `make run`'s report and the experiment: the Transform
output's splits in memory (TransformedSplits), batching and scoring (make_dataset,
predict_scores), the Trainer's model as a Keras model on transformed features
(load_ranking_model), the probes (probe_metrics, trainer_probes) and the must-beat baselines from
InteractionFeatures' splits (baseline_results; the arithmetic is pipeline/baselines.py)."""
import os
from typing import TYPE_CHECKING, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from models.ranking.inputs import as_model_input, compact_ints, make_dataset  # noqa: F401
from pipeline import baselines as baselines_lib
from pipeline import probes as probes_lib
from pipeline.config import RunConfig
from pipeline.mlmd import (latest_run_custom_config, latest_run_outputs, open_store,
                           split_files, tfx_artifact)
from schemas import features

if TYPE_CHECKING:
    from tfx import types as tfx_types

    from models.ranking.config import RankingConfig

LABEL = features.transformed_name(features.LABEL)
IS_NEW_ITEM = features.transformed_name(features.IS_NEW_ITEM)
IS_NEW_USER = features.transformed_name(features.IS_NEW_USER)
IS_TAIL_ITEM = features.transformed_name(features.IS_TAIL_ITEM)
# Batch size for validation and eval scoring (no effect on the metrics: dropout is off and
# Keras' AUC accumulates over batches); training keeps the config's batch_size.
SCORING_BATCH_SIZE = 4096


# --- the transformed splits in memory and in-process scoring --------------------------------------
def run_features(representation: str, budget: int, use_history: bool) -> Tuple[str, ...]:
    """The transformed features one run trains and scores on: the label and what the ranking
    model reads (models/ranking/representations.model_input_keys, the one mapping)."""
    from models.ranking import representations
    return (LABEL,) + representations.model_input_keys(representation, budget, use_history)


def history_item_keys(representation: str, budget: int) -> Tuple[str, ...]:
    """The history's item inputs of a representation's model (what it reads with history beyond
    what it reads without, the history labels and mask aside)."""
    from models.ranking import representations
    without = set(representations.model_input_keys(representation, budget, False))
    return tuple(k for k in representations.model_input_keys(representation, budget, True)
                 if k not in without and k not in (representations.HISTORY_LABELS_KEY,
                                                   representations.HISTORY_MASK_KEY))


class TransformedSplits:
    """The Transform output's splits held in memory as numpy arrays, feature by feature: a
    feature is parsed from the gzipped TFRecords the first time it is asked for, held in the
    smallest integer dtype that fits (compact_ints), and `keep` frees those no longer needed
    (history_spm_<B> is [rows, H, S] per budget)."""

    def __init__(self, transformed_examples: "tfx_types.Artifact", transform_graph_uri: str):
        import tensorflow_transform as tft
        self.examples = transformed_examples
        self.spec = tft.TFTransformOutput(transform_graph_uri).transformed_feature_spec()
        self._data: Dict[str, Dict[str, np.ndarray]] = {s: {} for s in features.SPLITS}

    def files(self, split: str) -> List[str]:
        return split_files(self.examples, split)

    def has(self, name: str) -> bool:
        """Whether the Transform output has feature `name`."""
        return name in self.spec

    def get(self, split: str, names: Iterable[str]) -> Dict[str, np.ndarray]:
        names = list(dict.fromkeys(names))
        unknown = [n for n in names if n not in self.spec]
        if unknown:
            raise ValueError(f"features {unknown} are not in the Transform output "
                             f"(has {sorted(self.spec)})")
        cache = self._data[split]
        missing = [n for n in names if n not in cache]
        if missing:
            spec = {n: self.spec[n] for n in missing}
            parts: Dict[str, list] = {n: [] for n in missing}
            ds = (tf.data.TFRecordDataset(self.files(split), compression_type="GZIP")
                  .batch(8192).map(lambda x: tf.io.parse_example(x, spec)))
            for batch in ds:
                for n in missing:
                    parts[n].append(compact_ints(batch[n].numpy()))
            for n in missing:  # mixed batch dtypes promote to the widest
                cache[n] = np.concatenate(parts[n]) if parts[n] else np.zeros([0], np.int64)
        return {n: cache[n] for n in names}

    def keep(self, names: Iterable[str]) -> None:
        names = set(names)
        for cache in self._data.values():
            for n in [n for n in cache if n not in names]:
                del cache[n]

    def num_rows(self, split: str) -> int:
        return int(len(self.get(split, [LABEL])[LABEL]))

    def nbytes(self) -> int:
        return int(sum(a.nbytes for cache in self._data.values() for a in cache.values()))


def predict_scores(model, arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """Probabilities of a positive label, in row order."""
    logits = model.predict(make_dataset(arrays, SCORING_BATCH_SIZE), verbose=0)
    return tf.sigmoid(tf.reshape(logits, [-1])).numpy()


def trainer_ranking_config(config: RunConfig) -> Optional["RankingConfig"]:
    """The RankingConfig the newest run's Trainer trained with (its custom_config), or None."""
    from models.ranking.config import RankingConfig
    custom_config = latest_run_custom_config(config, "Trainer")
    return None if custom_config is None else RankingConfig.from_custom_config(custom_config)


def load_ranking_model(cfg: "RankingConfig", serving_model_dir: str,
                       sample: Mapping[str, np.ndarray], catalog_embeddings=None):
    """A Trainer's model as a Keras model taking transformed features: built from its
    RankingConfig, called once on `sample` (a few rows of its inputs) and given the exported
    SavedModel's weights."""
    from models.ranking import training
    model = training.build_model(cfg, catalog_embeddings)
    model({k: as_model_input(tf.constant(v)) for k, v in sample.items()}, training=False)
    variables = os.path.join(serving_model_dir, tf.saved_model.VARIABLES_DIRECTORY,
                             tf.saved_model.VARIABLES_FILENAME)
    model.load_weights(variables).expect_partial()
    return model


def empty_id_fingerprint() -> int:
    """The fingerprint Transform gives the empty id (features.HISTORY_PAD): history_fingerprint's
    padding (models/ranking/preprocessing.py, the one definition)."""
    from models.ranking import preprocessing
    return int(preprocessing.fingerprint_item_ids(tf.constant([features.HISTORY_PAD])).numpy()[0])


def probe_metrics(model, arrays: Mapping[str, np.ndarray], representation: str,
                  budget: int) -> Dict[str, Optional[float]]:
    """{PROBE_KEYS: AUC} of a model with history on the transformed eval `arrays` (its inputs, the
    label and is_new_item): scored on the eval rows with the history labels shuffled and with no
    history (pipeline/probes.py), AUC overall and on new items."""
    from models.ranking import representations
    names = run_features(representation, budget, True)
    inputs = {k: arrays[k] for k in names}
    pads = probes_lib.history_pad_values(history_item_keys(representation, budget),
                                         empty_id_fingerprint())
    keys = dict(labels_key=representations.HISTORY_LABELS_KEY,
                mask_key=representations.HISTORY_MASK_KEY)
    perturbed = {probes_lib.SHUFFLED_LABELS: probes_lib.shuffle_history_labels(inputs, **keys),
                 probes_lib.NO_HISTORY: probes_lib.remove_history(inputs, pads, **keys)}
    masks = baselines_lib.slice_masks(arrays[IS_NEW_ITEM])
    out: Dict[str, Optional[float]] = {}
    for probe in probes_lib.PROBES:
        aucs = baselines_lib.slice_aucs(arrays[LABEL], predict_scores(model, perturbed[probe]),
                                        masks)
        overall, new_items = probes_lib.probe_keys(probe)
        out[overall], out[new_items] = aucs["auc_overall"], aucs["auc_new_items"]
    return out


# --- the baselines from InteractionFeatures' splits ----------------------------------------------
def _read_examples(files: List[str], spec: dict, history_length: Optional[int] = None,
                   batch_size: int = 8192) -> Dict[str, np.ndarray]:
    """Parses gzipped tf.Examples: {feature: numpy}, and for a RaggedFeature `name` in spec,
    `name` as [rows, history_length] (the first history_length values, zero padded) plus
    `name + "/mask"`."""
    ragged = [k for k, v in spec.items() if isinstance(v, tf.io.RaggedFeature)]
    parts: Dict[str, list] = {}
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    for batch in ds:
        parsed = tf.io.parse_example(batch, spec)
        for k, v in parsed.items():
            if k in ragged:
                lengths = tf.minimum(v.row_lengths(), history_length)
                parts.setdefault(k, []).append(
                    v.to_tensor(default_value=0, shape=[None, history_length]).numpy())
                parts.setdefault(f"{k}/mask", []).append(
                    tf.sequence_mask(lengths, history_length, dtype=tf.int64).numpy())
            else:
                parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def read_baseline_inputs(raw_examples: "tfx_types.Artifact", history_length: int) -> dict:
    """What the baselines and their slices need from InteractionFeatures' Examples (raw rows:
    item and user ids): {"train": {item_id, user_id, label}, "eval": {item_id, user_id, label,
    history_labels [rows, H], history_labels/mask, is_new_item, is_new_user, is_tail_item}}.
    A flag the examples lack (-1 on every row) is derived from the train split by its definition
    (features.IS_NEW_USER, IS_TAIL_ITEM)."""
    ids = {features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
           features.USER_ID: tf.io.FixedLenFeature([], tf.string),
           features.LABEL: tf.io.FixedLenFeature([], tf.int64)}
    train = _read_examples(split_files(raw_examples, features.TRAIN), ids)
    flags = (features.IS_NEW_ITEM, features.IS_NEW_USER, features.IS_TAIL_ITEM)
    ev = _read_examples(split_files(raw_examples, features.EVAL), {
        **ids, features.HISTORY_LABELS: tf.io.RaggedFeature(tf.int64),
        **{f: tf.io.FixedLenFeature([], tf.int64, default_value=-1) for f in flags}},
        history_length=int(history_length))
    if np.any(ev[features.IS_NEW_USER] < 0):
        ev[features.IS_NEW_USER] = baselines_lib.new_users(ev[features.USER_ID],
                                                           train[features.USER_ID])
    if np.any(ev[features.IS_TAIL_ITEM] < 0):
        ev[features.IS_TAIL_ITEM] = baselines_lib.tail_from_counts(
            ev[features.IS_NEW_ITEM],
            baselines_lib.train_rows(train[features.ITEM_ID], ev[features.ITEM_ID]),
            features.TAIL_MIN_TRAIN_ROWS, features.TAIL_MAX_TRAIN_ROWS)
    return {"train": train, "eval": ev}


def baseline_results(raw_examples: "tfx_types.Artifact", history_length: int) -> dict:
    """{"metrics": {baseline: {auc_<slice>: AUC}}, "counts": {num_eval / num_<slice>: rows},
    "undefined": [auc_<slice> of the slices with fewer than two classes, where no AUC exists]}
    of the three baselines (pipeline/baselines.py) on the eval split of InteractionFeatures'
    output `raw_examples`, H = history_length."""
    data = read_baseline_inputs(raw_examples, history_length)
    train, ev = data["train"], data["eval"]
    scores = baselines_lib.baseline_scores(
        ev[features.HISTORY_LABELS], ev[f"{features.HISTORY_LABELS}/mask"], ev[features.ITEM_ID],
        train[features.ITEM_ID], train[features.LABEL], history_length=history_length)
    masks = baselines_lib.slice_masks(ev[features.IS_NEW_ITEM], ev[features.IS_TAIL_ITEM],
                                      ev[features.IS_NEW_USER])
    labels = ev[features.LABEL]
    return {"metrics": baselines_lib.baseline_metrics(labels, scores, masks),
            "counts": baselines_lib.slice_counts(masks),
            "undefined": [f"auc_{name}" for name, mask in masks.items()
                          if np.unique(labels[mask]).size < 2]}


def trainer_probes(config: RunConfig, outputs: Optional[Dict[str, Dict[str, List]]] = None
                   ) -> Optional[Dict[str, Optional[float]]]:
    """The probes (probe_metrics) of the newest run's Trainer model, scored in-process on its
    Transform output's eval split; None when the model reads no history (or the run has no
    Trainer)."""
    from tfx.utils import path_utils

    from models.ranking import training
    outputs = outputs if outputs is not None else latest_run_outputs(config)
    cfg = trainer_ranking_config(config)
    trainer_model = outputs.get("Trainer", {}).get("model")
    if cfg is None or not cfg.use_history or not trainer_model:
        return None
    store = open_store(config.metadata_path)
    graph = outputs["Transform"]["transform_graph"][0].uri
    data = TransformedSplits(tfx_artifact(store, outputs["Transform"]["transformed_examples"][0]),
                             graph)
    names = run_features(cfg.representation, cfg.item_table_size, True)
    arrays = data.get(features.EVAL, list(names) + [IS_NEW_ITEM])
    model = load_ranking_model(cfg, path_utils.serving_model_path(trainer_model[0].uri),
                               {k: arrays[k][:2] for k in names},
                               training.load_catalog_embeddings(graph))
    return probe_metrics(model, arrays, cfg.representation, cfg.item_table_size)
