"""--rqvae_mode reuse and --refresh_sids: the pipeline built for them (not run), the config's
checks and the message of a reuse with nothing to reuse. The two-run check (existing SIDs
byte-identical) is tests/sid_reuse_e2e_test.py (slow)."""
import dataclasses
import os

import pytest

from data import synthetic
from pipeline import pipeline as pipeline_lib
from pipeline.config import RunConfig
from pipeline.inputs import prepare_inputs
from pipeline.run import check_reuse


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("sid_space"))
    data_dir = os.path.join(tmp, "data")
    synthetic.generate_synthetic(data_dir, num_users=20, num_items=15, num_interactions=200)
    return RunConfig(pipeline_name="semids-sid-space", dataset="csv", data_dir=data_dir,
                     output_dir=os.path.join(tmp, "outputs"),
                     results_dir=os.path.join(tmp, "results"), item_table_size=64,
                     table_budgets=(64,))


def _nodes(config):
    pipeline = pipeline_lib.create_pipeline(config, prepare_inputs(config))
    return {c.id: c for c in pipeline.components}


def test_train_mode_is_unchanged_by_default(config):
    nodes = _nodes(config)
    assert {"RqVaeTrainer", "SpmTrainer", "SemanticIdGen"} <= set(nodes)
    assert not {"latest_rqvae_resolver", "latest_spm_resolver",
                "latest_catalog_resolver"} & set(nodes)
    assert nodes["SemanticIdGen"].exec_properties["sid_mode"] == "train"


def test_reuse_resolves_the_last_rqvae_catalog_and_spm_models_instead_of_training(config):
    from tfx.dsl.compiler import compiler
    reuse = dataclasses.replace(config, rqvae_mode="reuse")
    pipeline = pipeline_lib.create_pipeline(reuse, prepare_inputs(reuse))
    nodes = {c.id: c for c in pipeline.components}
    assert "RqVaeTrainer" not in nodes and "SpmTrainer" not in nodes
    sid_gen = nodes["SemanticIdGen"]
    assert sid_gen.exec_properties["sid_mode"] == "reuse"
    compiled = {n.pipeline_node.node_info.id: n.pipeline_node
                for n in compiler.Compiler().compile(pipeline).nodes}
    for key, resolver, producer, output in (
            ("model", "latest_rqvae_resolver", "RqVaeTrainer", "model"),
            ("previous_catalog", "latest_catalog_resolver", "SemanticIdGen", "catalog"),
            ("spm_models", "latest_spm_resolver", "SpmTrainer", "spm_models")):
        assert sid_gen.inputs[key].producer_component_id == resolver
        # The resolver asks MLMD for the producer's output in this pipeline's earlier runs.
        [channel] = compiled[resolver].inputs.inputs[f"_{producer}.{output}"].channels
        names = {q.type.name: q.name.field_value.string_value for q in channel.context_queries}
        assert names == {"pipeline": config.pipeline_name,
                         "node": f"{config.pipeline_name}.{producer}"}
        assert channel.output_key == output
    assert nodes["Transform"].inputs["spm_models"].producer_component_id == "latest_spm_resolver"


def test_refresh_compares_with_the_last_catalog_and_still_trains(config):
    nodes = _nodes(dataclasses.replace(config, refresh_sids=True))
    assert "RqVaeTrainer" in nodes and "latest_catalog_resolver" in nodes
    assert nodes["SemanticIdGen"].inputs["previous_catalog"].producer_component_id == (
        "latest_catalog_resolver")


def test_config_checks_the_mode():
    with pytest.raises(ValueError, match="rqvae_mode must be one of"):
        RunConfig(rqvae_mode="frozen")
    with pytest.raises(ValueError, match="refresh_sids retrains the RQ-VAE"):
        RunConfig(rqvae_mode="reuse", refresh_sids=True)


def test_reuse_with_nothing_to_reuse_says_to_train_first(config):
    with pytest.raises(ValueError, match="no earlier RQ-VAE, catalog, SentencePiece models to "
                                         "reuse .*--rqvae_mode train first"):
        check_reuse(dataclasses.replace(config, rqvae_mode="reuse"))
    check_reuse(config)  # train mode: nothing to check


def test_a_span_window_resolves_the_earlier_spans_after_this_runs_ingest(config):
    from tfx.dsl.compiler import compiler
    assert "span_window_resolver" not in _nodes(config)  # window_spans 1: the time split
    windowed = dataclasses.replace(config, window_spans=4, warm_start=True)
    pipeline = pipeline_lib.create_pipeline(windowed, prepare_inputs(windowed))
    nodes = {c.id: c for c in pipeline.components}
    features_node = nodes["InteractionFeatures"]
    assert features_node.inputs["window_examples"].producer_component_id == "span_window_resolver"
    assert features_node.exec_properties["window_spans"] == 4
    assert features_node.exec_properties["train_newest_span_only"] == 1  # warm start
    assert features_node.exec_properties["replay_share"] == 0.0
    replaying = dataclasses.replace(windowed, warm_start_replay=0.5)
    assert _nodes(replaying)["InteractionFeatures"].exec_properties["replay_share"] == 0.5
    assert features_node.exec_properties["new_item_fraction"] == 0.0  # a span brings its own
    compiled = {n.pipeline_node.node_info.id: n.pipeline_node
                for n in compiler.Compiler().compile(pipeline).nodes}
    # After this run's ExampleGen (else the window would miss the span it just ingested), over
    # every earlier run of the pipeline.
    assert "InteractionExampleGen" in compiled["span_window_resolver"].upstream_nodes
    [channel] = compiled["span_window_resolver"].inputs.inputs[
        "_InteractionExampleGen.examples"].channels
    names = {q.type.name: q.name.field_value.string_value for q in channel.context_queries}
    assert names == {"pipeline": config.pipeline_name,
                     "node": f"{config.pipeline_name}.InteractionExampleGen"}
    scratch = dataclasses.replace(config, window_spans=4)
    assert _nodes(scratch)["InteractionFeatures"].exec_properties["train_newest_span_only"] == 0
    scratch_node = _nodes(dataclasses.replace(scratch, warm_start_replay=0.5))["InteractionFeatures"]
    assert scratch_node.exec_properties["replay_share"] == 0.0  # replay is a warm start's
