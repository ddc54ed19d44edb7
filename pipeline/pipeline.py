"""create_pipeline: the semids TFX pipeline, in data-path order."""
import dataclasses
import os
from typing import Any, List, Optional

import tensorflow_model_analysis as tfma
from google.protobuf import wrappers_pb2
from tfx import v1 as tfx
from tfx.proto import range_config_pb2
from tfx.types import standard_artifacts

from components import artifacts, fingerprint
from components.content_embedder.component import ContentEmbedder
from components.example_gen.component import ValidatingExampleGen
from components.example_validator.component import StrictExampleValidator
from components.interaction_features.component import InteractionFeatures
from components.semantic_id_gen.component import SemanticIdGen
from components.spm_trainer.component import SpmTrainer
from components.transform.component import CatalogTransform
from models.ranking.config import TUNABLE_FIELDS, RankingConfig
from models.ranking.tuned import tuned_hparams
from pipeline.config import REPO_ROOT, RunConfig
from pipeline.inputs import PipelineInputs, staged_schema
from pipeline.runners import (beam_pipeline_args, content_embedder_plan,
                              item_side_beam_args)
from schemas import features

RANKING_DIR = os.path.join(REPO_ROOT, "models", "ranking")
PREPROCESSING_MODULE = os.path.join(RANKING_DIR, "preprocessing.py")
TRAINER_MODULE = os.path.join(RANKING_DIR, "trainer_module.py")
TRAINING_MODULE = os.path.join(RANKING_DIR, "training.py")  # what trainer_module trains with
RQVAE_DIR = os.path.join(REPO_ROOT, "models", "rqvae")
RQVAE_TRAINER_MODULE = os.path.join(RQVAE_DIR, "trainer_module.py")
# The same user functions as dotted paths, importable wherever the semids package is installed
# (the Vertex image): create_pipeline(module_paths=True) uses these instead of the files above.
PREPROCESSING_FN = "models.ranking.preprocessing.preprocessing_fn"
TRAINER_RUN_FN = "models.ranking.trainer_module.run_fn"
RQVAE_TRAINER_RUN_FN = "models.rqvae.trainer_module.run_fn"
# create_pipeline's default metadata_connection_config: sqlite at config.metadata_path.
LOCAL_SQLITE_METADATA = "local-sqlite"
# Node ids that Resolvers of later runs look artifacts up by (--rqvae_mode reuse).
RQVAE_TRAINER_ID = "RqVaeTrainer"
SEMANTIC_ID_GEN_ID = "SemanticIdGen"
SPM_TRAINER_ID = "SpmTrainer"


def transform_config(config: RunConfig) -> dict:
    """Transform's custom_config; its code_version fingerprints the import closure of the
    preprocessing_fn module and of CatalogTransform's executor (components/fingerprint.py), so
    a code change there reruns Transform (TFX's cache keys on exec properties, not on code)."""
    return {
        "history_length": config.history_length,
        "user_hash_buckets": config.user_hash_buckets,
        "spm_budgets": list(config.all_table_budgets),
        fingerprint.CODE_VERSION_KEY: fingerprint.code_fingerprint(
            PREPROCESSING_MODULE, CatalogTransform.EXECUTOR_SPEC.executor_class.__module__),
    }


def ranking_config(config: RunConfig) -> RankingConfig:
    """The ranking model's typed config: RunConfig's fields of the same names, plus the item
    side's SID shape (the catalog's size is the Trainer's to set: it is known once the catalog
    is built)."""
    names = {f.name for f in dataclasses.fields(RankingConfig)} - {"codebook_size", "num_levels",
                                                                    "catalog_size"}
    values = {name: getattr(config, name) for name in names}
    # Unset tunable fields take the settings tuned for this dataset and representation.
    tuned = tuned_hparams(config.dataset_name, config.representation)
    for name in TUNABLE_FIELDS:
        if values.get(name) is None and name in tuned:
            values[name] = tuned[name]
    return RankingConfig(codebook_size=config.rqvae_codebook_size,
                         num_levels=config.rqvae_num_levels,
                         **{k: v for k, v in values.items() if v is not None})


def trainer_config(config: RunConfig) -> dict:
    """The ranking Trainer's custom_config: RankingConfig's fields and the fingerprint of the
    run_fn module's import closure."""
    return {**ranking_config(config).to_dict(),
            fingerprint.CODE_VERSION_KEY: fingerprint.code_fingerprint(TRAINER_MODULE)}


def rqvae_config(config: RunConfig) -> dict:
    """The RQ-VAE Trainer's custom_config: the RunConfig's rqvae_* fields without the prefix."""
    cfg = {k[len("rqvae_"):]: getattr(config, k) for k in (
        "rqvae_num_levels", "rqvae_codebook_size", "rqvae_latent_dim", "rqvae_beta",
        "rqvae_epochs", "rqvae_batch_size", "rqvae_learning_rate", "rqvae_dead_code_window",
        "rqvae_min_epochs", "rqvae_patience", "rqvae_min_improvement", "rqvae_max_train_items")}
    cfg["hidden_units"] = list(config.rqvae_hidden_units)
    cfg["seed"] = config.seed
    cfg[fingerprint.CODE_VERSION_KEY] = fingerprint.code_fingerprint(RQVAE_TRAINER_MODULE)
    return cfg


def eval_config(config: RunConfig) -> tfma.EvalConfig:
    # Blessing is decided on the overall slice only. The other slices are reported, but they are
    # too small to gate on: ML-100K's 413-row tail slice moved by 0.018 AUC between two Trainer
    # runs of the same code and seed, which blocked the push.
    auc = tfma.MetricConfig(
        class_name="AUC",
        per_slice_thresholds=[tfma.PerSliceMetricThreshold(
            slicing_specs=[tfma.SlicingSpec()],
            threshold=tfma.MetricThreshold(
                value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_auc}),
                change_threshold=tfma.GenericChangeThreshold(
                    direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                    absolute={"value": -config.auc_regression_tolerance})))])
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=features.SERVING_TF_EXAMPLE_SIGNATURE,
            label_key=features.LABEL,
            prediction_key=features.PREDICTION_KEY,
            preprocessing_function_names=[])],
        # Overall, and by the 0/1 row flags InteractionFeatures adds to every raw example.
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[features.IS_NEW_ITEM]),
                       tfma.SlicingSpec(feature_keys=[features.IS_NEW_USER]),
                       tfma.SlicingSpec(feature_keys=[features.IS_TAIL_ITEM])],
        metrics_specs=[tfma.MetricsSpec(metrics=[auc, tfma.MetricConfig(class_name="ExampleCount")])],
        # The compiled TFRS metrics would make TFMA call model.evaluate on raw features.
        options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)))


def latest_artifact_resolver(node_id: str, artifact_type, producer_id: str, output_key: str):
    """A Resolver (LatestArtifactStrategy) giving the newest `output_key` artifact that node
    `producer_id` of this pipeline wrote in any earlier run, whether or not that node is part
    of this run's pipeline."""
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        **{output_key: tfx.dsl.Channel(type=artifact_type, producer_component_id=producer_id,
                                       output_key=output_key)}).with_id(node_id)


def span_window_resolver_node(window_spans: int, interaction_gen):
    """A Resolver (SpanRangeStrategy, RollingRange) giving the Examples of the newest
    `window_spans` spans that `interaction_gen` wrote in this pipeline's runs, this run's
    included: it runs after `interaction_gen`. InteractionFeatures keeps one artifact per span
    (the newest) and the spans up to this run's."""
    resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={"range_config": range_config_pb2.RangeConfig(
            rolling_range=range_config_pb2.RollingRange(num_spans=window_spans))},
        examples=tfx.dsl.Channel(type=standard_artifacts.Examples,
                                 producer_component_id=interaction_gen.id,
                                 output_key="examples")).with_id("span_window_resolver")
    resolver.add_upstream_node(interaction_gen)
    return resolver


def create_pipeline(config: RunConfig, inputs: PipelineInputs, *,
                    pipeline_root: Optional[str] = None,
                    metadata_connection_config: Any = LOCAL_SQLITE_METADATA,
                    module_paths: bool = False,
                    schema_file: Optional[str] = None,
                    serving_model_dir: Optional[str] = None,
                    beam_args: Optional[List[str]] = None,
                    items_fingerprint: Optional[str] = None) -> tfx.dsl.Pipeline:
    """`inputs` from pipeline.inputs.prepare_inputs: the data folder (items.csv,
    interactions.csv; data/format.py) and the content encoder's folder.

    The keyword options serve other orchestrators (pipeline/vertex.py); their defaults build the
    local pipeline: pipeline_root / serving_model_dir default to the config's, the sqlite MLMD
    at config.metadata_path (None: no connection config, the orchestrator's own MLMD), module
    files (module_paths=True: the dotted run_fn / preprocessing_fn paths above instead, which
    TFX does not package into wheels under the pipeline root), schemas/interactions.pbtxt, the
    config's runner's Beam args, and items.csv's fingerprint read now (see ValidatingExampleGen).
    """
    components: List = []
    data_dir = inputs.data_dir
    # A small catalog's item side runs in one process under direct_multiprocess (runners.py).
    item_side_args = item_side_beam_args(config, inputs.num_items)

    def item_side(component):
        return component.with_beam_pipeline_args(item_side_args) if item_side_args else component

    # Items: validated rows of items.csv (rejects written line by line).
    item_gen = item_side(ValidatingExampleGen(
        input_base=data_dir, table="items", max_bad_row_fraction=config.max_bad_row_fraction,
        instance_name="ItemExampleGen"))
    components.append(item_gen)

    # The content encoder's files (model.onnx + tokenizer.json) as an artifact, so remote
    # workers read them from its URI; absent when items.csv brings its own embeddings.
    encoder = None
    if inputs.encoder_dir:
        encoder_importer = tfx.dsl.Importer(
            source_uri=inputs.encoder_dir, artifact_type=artifacts.ContentEncoder,
        ).with_id("ContentEncoderImporter")
        components.append(encoder_importer)
        encoder = encoder_importer.outputs["result"]

    # Item text -> frozen MiniLM sentence embedding (or the precomputed embedding column).
    # Its workers, onnxruntime threads and spinning: runners.content_embedder_plan.
    encoder_plan = content_embedder_plan(config, inputs.num_items)
    content_embedder = ContentEmbedder(
        items=item_gen.outputs["examples"], encoder=encoder,
        text_fields=list(inputs.text_fields), batch_size=config.embed_batch_size,
        num_threads=encoder_plan.num_threads, allow_spinning=encoder_plan.allow_spinning,
        parallel_calls=encoder_plan.parallel_calls)
    if encoder_plan.beam_args:
        content_embedder = content_embedder.with_beam_pipeline_args(encoder_plan.beam_args)
    components.append(content_embedder)

    reuse = config.rqvae_mode == "reuse"
    spm_models = None  # SpmTrainer's (below), or the reused ones
    if reuse:
        # A frozen SID space: the last RQ-VAE and SentencePiece models of this pipeline.
        rqvae_resolver = latest_artifact_resolver(
            "latest_rqvae_resolver", standard_artifacts.Model, RQVAE_TRAINER_ID, "model")
        spm_resolver = latest_artifact_resolver(
            "latest_spm_resolver", artifacts.SpmModels, SPM_TRAINER_ID, "spm_models")
        components += [rqvae_resolver, spm_resolver]
        rqvae_model = rqvae_resolver.outputs["model"]
        spm_models = spm_resolver.outputs["spm_models"]
    else:
        # RQ-VAE on the embeddings of every catalog item (content only, no interactions).
        rqvae_trainer = tfx.components.Trainer(
            **({"run_fn": RQVAE_TRAINER_RUN_FN} if module_paths else
               {"module_file": RQVAE_TRAINER_MODULE}),
            examples=content_embedder.outputs["embeddings"],
            train_args=tfx.proto.TrainArgs(splits=[features.SPLIT_ALL]),
            eval_args=tfx.proto.EvalArgs(splits=[features.SPLIT_ALL]),
            custom_config=rqvae_config(config)).with_id(RQVAE_TRAINER_ID)
        components.append(rqvae_trainer)
        rqvae_model = rqvae_trainer.outputs["model"]

    # The last catalog: its SIDs are kept (reuse), or compared with the new ones (refresh).
    previous_catalog = None
    if reuse or config.refresh_sids:
        catalog_resolver = latest_artifact_resolver(
            "latest_catalog_resolver", artifacts.ItemCatalog, SEMANTIC_ID_GEN_ID, "catalog")
        components.append(catalog_resolver)
        previous_catalog = catalog_resolver.outputs["catalog"]

    # RQ-VAE inference (all items, or only new ones on reuse) -> ItemCatalog (item -> SID,
    # embedding) + SID report.
    semantic_id_gen = item_side(SemanticIdGen(
        embeddings=content_embedder.outputs["embeddings"], model=rqvae_model,
        num_levels=config.rqvae_num_levels, codebook_size=config.rqvae_codebook_size,
        collision_breaker=config.sid_collision_breaker, sid_mode=config.rqvae_mode,
        previous_catalog=previous_catalog, spm_models=spm_models
    ).with_id(SEMANTIC_ID_GEN_ID))
    components.append(semantic_id_gen)

    # Interactions: validated rows of interactions.csv, one split `all`.
    interaction_gen = ValidatingExampleGen(
        input_base=data_dir, table="interactions", max_bad_row_fraction=config.max_bad_row_fraction,
        instance_name="InteractionExampleGen", items_fingerprint=items_fingerprint)
    components.append(interaction_gen)

    # The span window: the interactions of this run's span and of the earlier spans that this
    # pipeline ingested (one Examples artifact per span).
    span_window = None
    if config.window_spans > 1:
        span_window_resolver = span_window_resolver_node(config.window_spans, interaction_gen)
        components.append(span_window_resolver)
        span_window = span_window_resolver.outputs["examples"]

    # Splits by time, or by span (the newest span evaluated); held-out new items (eval and
    # validation); history + history_labels, is_new_item, is_new_user, is_tail_item.
    span_mode = config.window_spans > 1
    train_newest_span_only = span_mode and config.warm_start and not config.refresh_sids
    interaction_features = InteractionFeatures(
        examples=interaction_gen.outputs["examples"],
        eval_fraction=config.eval_fraction, validation_fraction=config.validation_fraction,
        new_item_fraction=0.0 if span_mode else config.new_item_fraction,
        validation_new_item_fraction=0.0 if span_mode else config.validation_new_item_fraction,
        seed=config.seed, history_length=config.history_length,
        window_examples=span_window, window_spans=config.window_spans,
        train_newest_span_only=train_newest_span_only,
        replay_share=config.warm_start_replay if train_newest_span_only else 0.0)
    components.append(interaction_features)
    examples = interaction_features.outputs["examples"]

    # Statistics of every split.
    statistics_gen = tfx.components.StatisticsGen(examples=examples)
    components.append(statistics_gen)

    # The curated schema from schemas/ (TRAINING and SERVING environments).
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file or staged_schema(config))
    components.append(schema_gen)

    # Anomalies against the schema stop the run here, before training.
    example_validator = StrictExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    components.append(example_validator)

    if not reuse:
        # SentencePiece over the SIDs of the training impressions: one model per table budget.
        spm_trainer = SpmTrainer(
            examples=examples, catalog=semantic_id_gen.outputs["catalog"],
            vocab_sizes=list(config.all_table_budgets), seed=config.seed).with_id(SPM_TRAINER_ID)
        components.append(spm_trainer)
        spm_models = spm_trainer.outputs["spm_models"]

    # Ids -> the inputs of every representation and budget (id fingerprint, SID codes, catalog
    # row, SentencePiece pieces) for the candidate and every history item; user id hashed.
    transform = CatalogTransform(
        examples=examples, schema=schema_gen.outputs["schema"],
        **({"preprocessing_fn": PREPROCESSING_FN} if module_paths else
           {"module_file": PREPROCESSING_MODULE}),
        catalog=semantic_id_gen.outputs["catalog"],
        spm_models=spm_models,
        splits_config=tfx.proto.SplitsConfig(
            analyze=[features.TRAIN], transform=list(features.SPLITS)),
        # No pre-/post-transform statistics: nothing reads them (StatisticsGen + the validator
        # check the raw splits), and the post-transform ones wait for the write, so the
        # in-memory runner held every transformed row (19.8 GiB at 2M interactions).
        disable_statistics=True,
        custom_config=transform_config(config)).with_id("Transform")
    transform.add_upstream_node(example_validator)
    components.append(transform)

    # The latest blessed model: the baseline the Evaluator compares against, and with
    # --warm_start the Trainer's base model.
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    components.append(model_resolver)

    # TFRS ranking model; early stopping on the validation split; warm-started from the base
    # model's trainable weights when they fit (models/ranking/warm_start.py). A refresh of the
    # SIDs always trains from scratch.
    warm = config.warm_start and not config.refresh_sids
    trainer = tfx.components.Trainer(
        **({"run_fn": TRAINER_RUN_FN} if module_paths else {"module_file": TRAINER_MODULE}),
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        base_model=model_resolver.outputs["model"] if warm else None,
        train_args=tfx.proto.TrainArgs(splits=[features.TRAIN]),
        eval_args=tfx.proto.EvalArgs(splits=[features.VALIDATION]),
        custom_config=trainer_config(config))
    components.append(trainer)

    # AUC and example count on the eval split, overall and by is_new_item, is_new_user and
    # is_tail_item; blessing.
    evaluator = tfx.components.Evaluator(
        examples=examples, model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=[features.EVAL], eval_config=eval_config(config))
    components.append(evaluator)

    # A blessed model goes to the serving directory as a numbered version (TF Serving layout).
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=serving_model_dir or config.serving_model_dir)))
    components.append(pusher)

    if (isinstance(metadata_connection_config, str)
            and metadata_connection_config == LOCAL_SQLITE_METADATA):
        metadata_connection_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root or config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_args if beam_args is not None else beam_pipeline_args(config))
