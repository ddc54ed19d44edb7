import json
import os

import pytest

from pipeline import cli
from pipeline.config import RunConfig, load_config_from_env
from schemas import features


def test_round_trip_through_json(tmp_path):
    c = RunConfig(dataset="synthetic", item_table_size=123, hidden_units=(8, 4), beam_args=["--x=1"])
    p = tmp_path / "c.json"
    p.write_text(c.to_json())
    assert RunConfig.from_file(str(p)) == c


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="representation"):
        RunConfig(representation="nope")
    with pytest.raises(ValueError, match="unknown field"):
        RunConfig.from_dict({"item_buckets": 3})
    with pytest.raises(ValueError, match="data_dir"):
        RunConfig(dataset="csv")


def test_semids_config_env(tmp_path, monkeypatch):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"dataset": "synthetic", "max_epochs": 3}))
    monkeypatch.setenv("SEMIDS_CONFIG", str(p))
    assert load_config_from_env().max_epochs == 3
    monkeypatch.delenv("SEMIDS_CONFIG")
    assert load_config_from_env() == RunConfig()


def test_cli_flags_cover_every_field(tmp_path):
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"max_epochs": 7, "item_table_size": 5}))
    parser = cli.argparse.ArgumentParser()
    cli._add_config_flags(parser)
    args = parser.parse_args([
        "--config", str(base), "--item_table_size", "99", "--hidden_units", "4,2",
        "--enable_cache", "false", "--beam_arg=--direct_num_workers=2", "--dataset", "synthetic"])
    c = cli.config_from_args(args)
    assert (c.max_epochs, c.item_table_size, c.hidden_units, c.enable_cache) == (7, 99, (4, 2), False)
    assert c.beam_args == ["--direct_num_workers=2"]
    assert c.representation == features.RANDOM_HASH


def test_paths_are_per_dataset_and_representation(tmp_path):
    c = RunConfig(dataset="csv", data_dir=str(tmp_path / "mydata"), output_dir=str(tmp_path / "o"),
                  results_dir=str(tmp_path / "r"))
    assert c.results_path.endswith("r/mydata/random_hash")
    assert c.serving_model_dir.endswith("o/serving/semids")


def test_artifact_root_round_trips_and_is_a_flag(tmp_path):
    c = RunConfig(runner="dataflow", artifact_root="gs://b/semids", dataset="csv",
                  data_dir="gs://b/semids/data/x", beam_args=["--project=p"])
    assert RunConfig.from_dict(json.loads(c.to_json())) == c
    parser = cli.argparse.ArgumentParser()
    cli._add_config_flags(parser)
    args = parser.parse_args(["--artifact_root", "gs://b/semids"])
    assert cli.config_from_args(args).artifact_root == "gs://b/semids"
    assert RunConfig().artifact_root is None


def test_a_config_file_written_before_the_layering_change_still_loads():
    """pipeline/testdata/show_config_5f5a135.json: `semids show-config --dataset synthetic
    --representation sid_spm` at commit 5f5a135 (before the model defaults moved to models/)."""
    path = os.path.join(os.path.dirname(__file__), "testdata", "show_config_5f5a135.json")
    config = RunConfig.from_file(path)
    assert config.dataset == "synthetic" and config.representation == "sid_spm"
    with open(path) as f:
        written = json.load(f)
    # every field read back as it was written; fields added since take their defaults
    assert {k: v for k, v in config.to_dict().items() if k in written} == written
    added = {k: v for k, v in config.to_dict().items() if k not in written}
    assert added == {k: v for k, v in RunConfig().to_dict().items() if k in added}


def test_validation_new_item_fraction_field_and_flag():
    assert RunConfig().validation_new_item_fraction == 0.0
    assert RunConfig(validation_new_item_fraction=0.3).validation_new_item_fraction == 0.3
    with pytest.raises(ValueError, match="validation_new_item_fraction"):
        RunConfig(validation_new_item_fraction=1.0)
    with pytest.raises(ValueError, match="below 1"):
        RunConfig(new_item_fraction=0.5, validation_new_item_fraction=0.5)
    parser = cli.argparse.ArgumentParser()
    cli._add_config_flags(parser)
    args = parser.parse_args(["--validation_new_item_fraction", "0.05"])
    assert cli.config_from_args(args).validation_new_item_fraction == 0.05


def test_each_dataset_gets_its_own_pipeline_unless_named():
    """One MLMD store, Evaluator baseline and serving folder per dataset."""
    assert RunConfig().pipeline_name == "semids"
    assert RunConfig(dataset="ml1m").pipeline_name == "semids-ml1m"
    assert RunConfig(dataset="synthetic").pipeline_name == "semids-synthetic"
    assert RunConfig(dataset="csv", data_dir="/data/books").pipeline_name == "semids"
    assert RunConfig(dataset="ml1m", pipeline_name="mine").pipeline_name == "mine"
    assert RunConfig(dataset="ml1m").serving_model_dir != RunConfig().serving_model_dir


def test_ml1m_budgets_and_ml100k_defaults():
    assert RunConfig(dataset="ml1m").all_table_budgets == (512, 1024, 2048, 4096)
    assert RunConfig().all_table_budgets == (512, 1024, 2048, 10_000)
    assert RunConfig().item_table_size == 10_000


def test_ml1m_runs_beam_over_worker_processes_unless_a_runner_is_given():
    assert RunConfig(dataset="ml1m").runner == "direct_multiprocess"
    assert RunConfig(dataset="ml1m", runner="direct").runner == "direct"
    assert RunConfig().runner == RunConfig(dataset="synthetic").runner == "direct"


def test_ml1m_trains_with_its_own_batch_and_epochs_unless_given():
    from pipeline.config import DEFAULT_TRAINING
    ml1m = RunConfig(dataset="ml1m")
    assert (ml1m.batch_size, ml1m.max_epochs) == (DEFAULT_TRAINING["ml1m"]["batch_size"],
                                                  DEFAULT_TRAINING["ml1m"]["max_epochs"])
    assert RunConfig(dataset="ml1m", batch_size=256, max_epochs=3).batch_size == 256
    assert RunConfig(dataset="ml1m", batch_size=256, max_epochs=3).max_epochs == 3
    default = RunConfig()
    assert (default.batch_size, default.max_epochs) == (512, 20)
    # a config written to JSON and read back keeps the resolved values
    assert RunConfig.from_dict(ml1m.to_dict()) == ml1m


def test_synthetic_text_modes_match_the_generator_and_keep_experiment_keys(monkeypatch):
    from data.synthetic import TEXT_MODES
    from pipeline.config import SYNTHETIC_TEXT_MODES
    from pipeline.experiment.results import config_key
    assert SYNTHETIC_TEXT_MODES == TEXT_MODES
    with pytest.raises(ValueError, match="synthetic_text"):
        RunConfig(dataset="synthetic", synthetic_text="long")
    short = RunConfig(dataset="ml1m")
    key = config_key(short)
    assert key != config_key(RunConfig(dataset="ml1m", synthetic_text="realistic"))
    # The default gives the key of a config without the field (rows recorded before it existed).
    to_dict = RunConfig.to_dict
    monkeypatch.setattr(RunConfig, "to_dict", lambda self: {
        k: v for k, v in to_dict(self).items() if k != "synthetic_text"})
    assert config_key(short) == key


def test_the_codebook_size_is_sized_to_the_catalog_unless_set(tmp_path):
    assert RunConfig().rqvae_codebook_size == 16  # ML-100K's own (DEFAULT_CODEBOOK_SIZES)
    assert RunConfig(rqvae_codebook_size=64).rqvae_codebook_size == 64
    assert RunConfig(dataset="ml1m").rqvae_codebook_size == 64
    assert RunConfig(dataset="synthetic", synthetic_num_items=270_000).rqvae_codebook_size == 65
    assert RunConfig(dataset="synthetic", synthetic_num_items=270_000,
                     rqvae_codebook_size=64).rqvae_codebook_size == 64
    assert RunConfig(dataset="synthetic", synthetic_num_items=10 ** 6,
                     rqvae_num_levels=3).rqvae_codebook_size == 1000
    (tmp_path / "items.csv").write_text("item_id,title\n" + "".join(
        f"i{i},t\n" for i in range(262_145)))
    assert RunConfig(dataset="csv", data_dir=str(tmp_path)).rqvae_codebook_size == 65
    assert RunConfig(dataset="csv", data_dir="gs://b/d").rqvae_codebook_size == 64
    # A saved config keeps its K, whatever the catalog is now.
    saved = RunConfig(dataset="synthetic", synthetic_num_items=100).to_dict()
    assert RunConfig.from_dict(dict(saved, synthetic_num_items=10 ** 6)).rqvae_codebook_size == 64


def test_encoder_workers_and_threads_are_validated_and_flags():
    assert (RunConfig().encoder_workers, RunConfig().encoder_threads) == (None, None)
    c = RunConfig(runner="direct_multiprocess", encoder_workers=2, encoder_threads=1)
    assert RunConfig.from_dict(json.loads(c.to_json())) == c
    assert RunConfig(encoder_workers=1, encoder_threads=3).encoder_threads == 3  # direct: 1 only
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="encoder_threads must be a positive integer"):
            RunConfig(encoder_threads=bad)
    with pytest.raises(ValueError, match="encoder_workers must be a positive integer"):
        RunConfig(runner="direct_multiprocess", encoder_workers=0)
    with pytest.raises(ValueError, match="encoder_workers=2 needs runner direct_multiprocess"):
        RunConfig(encoder_workers=2)  # runner=direct: one process
    parser = cli.argparse.ArgumentParser()
    cli._add_config_flags(parser)
    args = parser.parse_args(["--runner", "direct_multiprocess", "--encoder_workers", "2",
                              "--encoder_threads", "1"])
    c = cli.config_from_args(args)
    assert (c.encoder_workers, c.encoder_threads) == (2, 1)
