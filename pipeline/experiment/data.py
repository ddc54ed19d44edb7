"""The experiment's inputs: the base pipeline run's artifacts (found through MLMD) and its
Transform output's splits held in memory.

Artifact paths come from TFX's utilities (artifact_utils.get_split_uri, path_utils) and are
read through tf.io.gfile only, so an artifact root on gs:// works as a local one.
"""
import dataclasses
import os
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Tuple

import numpy as np

from models.ranking import representations
from pipeline.config import RunConfig
from schemas import features

if TYPE_CHECKING:
    from tfx import types as tfx_types

LABEL = features.transformed_name(features.LABEL)
IS_NEW_ITEM = features.transformed_name(features.IS_NEW_ITEM)
# What every run reads besides the model's inputs: the label and the slicing columns.
META_FEATURES = (LABEL, IS_NEW_ITEM, features.ITEM_ID_FINGERPRINT)

# Batch size for validation and eval scoring (no effect on the metrics: dropout is off and
# Keras' AUC accumulates over batches); training keeps the config's batch_size.
SCORING_BATCH_SIZE = 4096


def run_features(representation: str, budget: int, use_history: bool) -> Tuple[str, ...]:
    """The transformed features one run trains and scores on: the label and what the ranking
    model reads (models/ranking/representations.model_input_keys, the one mapping)."""
    return (LABEL,) + representations.model_input_keys(representation, budget, use_history)


# --- pipeline artifacts --------------------------------------------------------------------------
@dataclasses.dataclass
class BaseRun:
    """What the base pipeline run fixed for every run of the experiment. The Examples artifacts
    are TFX artifacts (their split layout is TFX's: artifact_utils.get_split_uri)."""
    config: RunConfig
    metrics: dict
    transformed_examples: "tfx_types.Artifact"  # Transform's train/validation/eval
    raw_examples: "tfx_types.Artifact"  # InteractionFeatures' train/validation/eval
    transform_graph_uri: str
    trainer_model_uri: str
    evaluation_uri: str

    @property
    def transformed_examples_uri(self) -> str:
        return self.transformed_examples.uri

    @property
    def raw_examples_uri(self) -> str:
        return self.raw_examples.uri

    @property
    def serving_model_dir(self) -> str:
        """The Trainer's exported SavedModel (TFX's layout under the Model artifact)."""
        from tfx.utils import path_utils
        return path_utils.serving_model_path(self.trainer_model_uri)


def _tfx_artifact(store, mlmd_artifact):
    """An MLMD Artifact proto as the TFX Artifact of its registered type (split_names etc.)."""
    from tfx.types import artifact_utils
    [artifact_type] = store.get_artifact_types_by_id([mlmd_artifact.type_id])
    return artifact_utils.deserialize_artifact(artifact_type, mlmd_artifact)


def base_run_artifacts(config: RunConfig, metrics: dict) -> BaseRun:
    from pipeline import report
    outputs = report.latest_run_outputs(config)

    def artifact(component, key):
        try:
            return outputs[component][key][0]
        except (KeyError, IndexError):
            raise RuntimeError(f"the latest run of pipeline {config.pipeline_name!r} has no "
                               f"{component}.{key} output") from None

    evaluation = artifact("Evaluator", "evaluation").uri
    if metrics.get("evaluation_uri") and metrics["evaluation_uri"] != evaluation:
        raise RuntimeError(
            f"another run of pipeline {config.pipeline_name!r} finished while the experiment's "
            f"base run was read ({metrics['evaluation_uri']} vs {evaluation}); rerun the experiment")
    store = report.open_store(config.metadata_path)
    return BaseRun(config=config, metrics=metrics,
                   transformed_examples=_tfx_artifact(
                       store, artifact("Transform", "transformed_examples")),
                   raw_examples=_tfx_artifact(store, artifact("InteractionFeatures", "examples")),
                   transform_graph_uri=artifact("Transform", "transform_graph").uri,
                   trainer_model_uri=artifact("Trainer", "model").uri, evaluation_uri=evaluation)


def split_files(examples: "tfx_types.Artifact", split: str) -> List[str]:
    """The files of one split of an Examples artifact (sorted; an error when there are none)."""
    import tensorflow as tf
    from tfx.types import artifact_utils
    split_uri = artifact_utils.get_split_uri([examples], split)
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    if not files:
        raise RuntimeError(f"no examples for split {split!r} under {split_uri}")
    return files


# --- the transformed splits in memory ------------------------------------------------------------
class TransformedSplits:
    """The Transform output's splits held in memory as numpy arrays, feature by feature: a
    feature is parsed from the gzipped TFRecords the first time it is asked for, and `keep`
    frees those no longer needed (history_spm_<B> is [rows, H, S] int64 per budget)."""

    def __init__(self, transformed_examples: "tfx_types.Artifact", transform_graph_uri: str):
        import tensorflow_transform as tft
        self.examples = transformed_examples
        self.spec = tft.TFTransformOutput(transform_graph_uri).transformed_feature_spec()
        self._data: Dict[str, Dict[str, np.ndarray]] = {s: {} for s in features.SPLITS}

    def files(self, split: str) -> List[str]:
        return split_files(self.examples, split)

    def get(self, split: str, names: Iterable[str]) -> Dict[str, np.ndarray]:
        import tensorflow as tf
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
                    parts[n].append(batch[n].numpy())
            for n in missing:
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


def make_dataset(arrays: Dict[str, np.ndarray], batch_size: int, shuffle_seed: Optional[int] = None):
    """Batches of `arrays` (row-aligned): reshuffled every epoch with `shuffle_seed`, or in order.
    Shuffles row indices and gathers whole batches (cheaper than shuffling row structures)."""
    import tensorflow as tf
    n = len(next(iter(arrays.values())))
    tensors = {k: tf.constant(v) for k, v in arrays.items()}
    ds = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        ds = ds.shuffle(n, seed=int(shuffle_seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda idx: {k: tf.gather(t, idx) for k, t in tensors.items()})
    return ds.prefetch(tf.data.AUTOTUNE)


def predict_scores(model, arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """Probabilities of a positive label, in row order."""
    import tensorflow as tf
    logits = model.predict(make_dataset(arrays, SCORING_BATCH_SIZE), verbose=0)
    return tf.sigmoid(tf.reshape(logits, [-1])).numpy()
