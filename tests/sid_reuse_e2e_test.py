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
