"""One small synthetic pipeline run shared by every end-to-end test (session-scoped)."""
import os

import pytest


# A few bad rows in interactions.csv: the run reports them line by line and trains on the rest.
E2E_BAD_ROWS = 3


def e2e_config(tmp_dir: str, data_dir: str):
    from pipeline.config import RunConfig
    return RunConfig(
        pipeline_name="semids-e2e", dataset="csv", data_dir=data_dir,
        output_dir=os.path.join(tmp_dir, "outputs"), results_dir=os.path.join(tmp_dir, "results"),
        history_length=8, item_table_size=128, table_budgets=(64, 128), user_hash_buckets=400,
        embedding_dim=8,
        hidden_units=(16,), batch_size=128, max_epochs=2, early_stopping_patience=1,
        min_auc=0.0, auc_regression_tolerance=1.0,
        rqvae_num_levels=3, rqvae_codebook_size=8, rqvae_latent_dim=16, rqvae_epochs=10,
        rqvae_batch_size=64, rqvae_dead_code_window=5)


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory):
    """Runs the full pipeline once on synthetic data; returns (config, metrics, generated)."""
    from data import synthetic
    from pipeline.run import run_pipeline

    tmp = str(tmp_path_factory.mktemp("e2e"))
    data_dir = os.path.join(tmp, "synthetic-data")
    generated = synthetic.generate_synthetic(
        data_dir, num_users=150, num_items=120, num_interactions=3000, seed=0,
        bad_rows=E2E_BAD_ROWS)
    config = e2e_config(tmp, data_dir)
    metrics = run_pipeline(config, quiet=True)
    return config, metrics, generated


@pytest.fixture(scope="session")
def e2e_spm_run(e2e_run):
    """The same pipeline again with representation sid_spm: everything upstream of the Trainer
    comes from the cache. Returns (config, metrics, first run's metrics)."""
    import dataclasses

    from pipeline.run import run_pipeline
    config, first_metrics, _ = e2e_run
    spm_config = dataclasses.replace(config, representation="sid_spm")
    return spm_config, run_pipeline(spm_config, quiet=True), first_metrics


@pytest.fixture(scope="session")
def e2e_all_pushed(e2e_spm_run):
    """{representation: pushed model dir} for all six representations: the shared run's
    random_hash and sid_spm models plus one cached rerun (Trainer onwards) for each other one."""
    import dataclasses

    from pipeline.run import run_pipeline

    from schemas import features
    config, spm_metrics, first_metrics = e2e_spm_run
    pushed = {features.RANDOM_HASH: first_metrics["pushed_model_dir"],
              features.SID_SPM: spm_metrics["pushed_model_dir"]}
    for representation in features.REPRESENTATIONS:
        if representation not in pushed:
            metrics = run_pipeline(dataclasses.replace(config, representation=representation),
                                       quiet=True)
            pushed[representation] = metrics["pushed_model_dir"]
    return config, pushed
