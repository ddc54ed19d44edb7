"""A frozen SID space over two item spans (slow: two small pipeline runs, up to the item side).

Span 1 runs with --rqvae_mode train up to SpmTrainer; span 2 adds items to items.csv and runs
with --rqvae_mode reuse up to SemanticIdGen: every existing item's SID is byte-identical, the
new items get SIDs, and the catalog's metadata names the reused RQ-VAE and SentencePiece models
(MLMD ids, URIs, sha256) and the drift signal."""
import csv
import dataclasses
import json
import os

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NEW_ITEMS = 12


def _run_until(config, node):
    from tfx import v1 as tfx
    from tfx.orchestration.pipeline import RunOptions

    from pipeline.inputs import prepare_inputs
    from pipeline.pipeline import create_pipeline
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, prepare_inputs(config)),
                                           run_options=RunOptions(to_nodes=[node]))


def _catalog(config):
    from pipeline import mlmd
    artifact = mlmd.latest_node_output(config, "SemanticIdGen", "catalog")
    with open(os.path.join(artifact.uri, "catalog.tsv"), "rb") as f:
        sids = {line.split(b"\t")[0]: line.split(b"\t")[2] for line in f.read().splitlines()}
    with open(os.path.join(artifact.uri, "metadata.json")) as f:
        return sids, json.load(f)


def test_reuse_keeps_span_1_sids_and_codes_span_2_items(tmp_path):
    from data import synthetic
    from pipeline import mlmd
    from pipeline.run import check_reuse
    from pipeline.config import RunConfig

    data_dir = str(tmp_path / "data")
    synthetic.generate_synthetic(data_dir, num_users=80, num_items=60, num_interactions=1200)
    config = RunConfig(
        pipeline_name="semids-reuse", dataset="csv", data_dir=data_dir,
        output_dir=str(tmp_path / "outputs"), results_dir=str(tmp_path / "results"),
        item_table_size=64, table_budgets=(64,), rqvae_num_levels=3, rqvae_codebook_size=8,
        rqvae_latent_dim=16, rqvae_epochs=10, rqvae_batch_size=64, rqvae_dead_code_window=5)
    _run_until(config, "SpmTrainer")
    span1, _ = _catalog(config)

    # Span 2: the same items.csv with NEW_ITEMS more rows.
    items_csv = os.path.join(data_dir, "items.csv")
    with open(items_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    added = [[f"span2-{i}"] + r[1:] for i, r in enumerate(rows[1:NEW_ITEMS + 1])]
    with open(items_csv, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(added)
    reuse = dataclasses.replace(config, rqvae_mode="reuse")
    check_reuse(reuse)
    _run_until(reuse, "SemanticIdGen")
    span2, metadata = _catalog(reuse)

    assert {i: span2[i] for i in span1} == span1  # byte-identical
    assert set(span2) - set(span1) == {f"span2-{i}".encode() for i in range(NEW_ITEMS)}
    assert len(set(span2.values())) == len(span2)
    space = metadata["sid_space"]
    assert space["mode"] == "reuse" and space["new_items"] == NEW_ITEMS
    assert space["sid_changed"] == 0 and space["existing_items"] == len(span1)
    rqvae = mlmd.latest_node_output(config, "RqVaeTrainer", "model")
    spm = mlmd.latest_node_output(config, "SpmTrainer", "spm_models")
    assert space["rqvae"]["mlmd_id"] == rqvae.id and space["rqvae"]["uri"] == rqvae.uri
    assert space["spm_models"]["mlmd_id"] == spm.id and len(space["spm_models"]["sha256"]) == 64
    assert space["drift"]["num_new"] == NEW_ITEMS

    # Serving across spans: before the next push a client gets a new item's SID from the frozen
    # RQ-VAE's `encode`; it is the SID the catalog gives the item at the push (its L codes; the
    # breaker code is 0 unless the item joins a group), so serving_by_sid before and
    # serving_default after score it alike (tests/e2e_pipeline_test.py checks that a catalog
    # SID scores as the id does).
    import numpy as np
    import tensorflow as tf
    from schemas import features
    catalog = mlmd.latest_node_output(reuse, "SemanticIdGen", "catalog")
    embeddings = np.load(os.path.join(catalog.uri, "embeddings.npy"))
    rows = {item_id: i for i, item_id in enumerate(sorted(span2))}
    new_ids = sorted(set(span2) - set(span1))
    encode = tf.saved_model.load(os.path.join(rqvae.uri, "Format-Serving")).signatures[
        features.RQVAE_ENCODE_SIGNATURE]
    codes = encode(**{features.RQVAE_EMBEDDING_INPUT: tf.constant(
        embeddings[[rows[i] for i in new_ids]])})[features.RQVAE_CODES_OUTPUT].numpy()
    num_levels = metadata["num_levels"]
    for item_id, c in zip(new_ids, codes):
        sid = [int(x) for x in span2[item_id].split(b"-")]
        assert sid[:num_levels] == c.tolist(), item_id


def test_a_warm_started_run_restores_the_last_blessed_model(tmp_path):
    """Two full runs of one pipeline: the second (--rqvae_mode reuse --warm_start) restores the
    first one's trainable weights; a third with another budget is refused and says why."""
    from data import synthetic
    from pipeline import mlmd
    from pipeline.config import RunConfig
    from pipeline.run import run_pipeline

    data_dir = str(tmp_path / "data")
    synthetic.generate_synthetic(data_dir, num_users=80, num_items=60, num_interactions=1200)
    config = RunConfig(
        pipeline_name="semids-warm", dataset="csv", data_dir=data_dir,
        output_dir=str(tmp_path / "outputs"), results_dir=str(tmp_path / "results"),
        representation="sid_prefix_ngram", item_table_size=64, table_budgets=(64, 128),
        history_length=8, embedding_dim=8, hidden_units=(16,), batch_size=128, max_epochs=1,
        min_auc=0.0, auc_regression_tolerance=1.0, rqvae_num_levels=3, rqvae_codebook_size=8,
        rqvae_latent_dim=16, rqvae_epochs=10, rqvae_batch_size=64, rqvae_dead_code_window=5)

    def summary():
        run = mlmd.latest_node_output(config, "Trainer", "model_run")
        with open(os.path.join(run.uri, "training_summary.json")) as f:
            return json.load(f)

    run_pipeline(config, quiet=True)
    first = mlmd.latest_node_output(config, "Trainer", "model")
    assert os.path.isfile(os.path.join(first.uri, "warm_start", "trainable_weights.npz"))
    assert summary()["warm_start"]["base_model"] is None

    warm = dataclasses.replace(config, rqvae_mode="reuse", warm_start=True)
    run_pipeline(warm, quiet=True)
    assert summary()["warm_start"]["restored"] is True
    assert summary()["warm_start"]["base_model"].startswith(first.uri)

    run_pipeline(dataclasses.replace(warm, item_table_size=128), quiet=True)
    assert summary()["warm_start"]["refused"] == ["the table budget changed: 64 -> 128"]
