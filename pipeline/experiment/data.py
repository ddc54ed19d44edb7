"""The experiment's inputs: the base pipeline run's artifacts (found through MLMD) and its
Transform output's splits held in memory.

Artifact paths come from TFX's utilities (artifact_utils.get_split_uri, path_utils) and are
read through tf.io.gfile only, so an artifact root on gs:// works as a local one.
"""
import dataclasses
from typing import TYPE_CHECKING

from pipeline import mlmd
from pipeline.config import RunConfig
# The in-process evaluation the experiment shares with `make run`'s report (pipeline/evaluation.py).
from pipeline.evaluation import (IS_NEW_ITEM, IS_NEW_USER, IS_TAIL_ITEM, LABEL,  # noqa: F401
                                 SCORING_BATCH_SIZE, TransformedSplits, make_dataset,
                                 predict_scores, run_features)
from pipeline.mlmd import split_files  # noqa: F401
from schemas import features

if TYPE_CHECKING:
    from tfx import types as tfx_types

# What every run reads besides the model's inputs: the label and the slicing columns.
META_FEATURES = (LABEL, IS_NEW_ITEM, features.ITEM_ID_FINGERPRINT)
# Slicing columns read when the Transform output has them (passed through like is_new_item).
OPTIONAL_META_FEATURES = (IS_NEW_USER, IS_TAIL_ITEM)


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


def base_run_artifacts(config: RunConfig, metrics: dict) -> BaseRun:
    outputs = mlmd.latest_run_outputs(config)

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
    store = mlmd.open_store(config.metadata_path)
    return BaseRun(config=config, metrics=metrics,
                   transformed_examples=mlmd.tfx_artifact(
                       store, artifact("Transform", "transformed_examples")),
                   raw_examples=mlmd.tfx_artifact(store, artifact("InteractionFeatures", "examples")),
                   transform_graph_uri=artifact("Transform", "transform_graph").uri,
                   trainer_model_uri=artifact("Trainer", "model").uri, evaluation_uri=evaluation)


def prepare_base_run(config: RunConfig, quiet: bool = False):
    """Runs the base pipeline (cached when done before: split, SIDs, SPM models, Transform) and
    returns open_base_run's (BaseRun, its TransformedSplits, the catalog embeddings or None)."""
    from pipeline.run import run_pipeline
    return open_base_run(config, run_pipeline(config, quiet=quiet))


def open_base_run(config: RunConfig, metrics: dict):
    """The base run that wrote `metrics` (base_run_artifacts), without running anything:
    (BaseRun, its TransformedSplits, the catalog embeddings or None)."""
    from models.ranking import training
    base_run = base_run_artifacts(config, metrics)
    data = TransformedSplits(base_run.transformed_examples, base_run.transform_graph_uri)
    return base_run, data, training.load_catalog_embeddings(base_run.transform_graph_uri)


def train_in_memory(cfg, train, val, catalog_embeddings=None):
    """Trains the ranking model of RankingConfig `cfg` on in-memory splits (early stopping on
    `val`); returns (model, training summary). The seed fixes the shuffling order (set before
    the datasets are built) and, again in train_model, the initialisation."""
    import tensorflow as tf

    from models.ranking import training
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(cfg.seed)
    return training.train_model(
        cfg, make_dataset(train, cfg.batch_size, shuffle_seed=cfg.seed),
        make_dataset(val, SCORING_BATCH_SIZE), verbose=0,
        catalog_embeddings=catalog_embeddings)
