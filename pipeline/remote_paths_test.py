"""`semids run --runner dataflow` with the local orchestrator (docs/deploy.md, "Runners"): the pipeline
root and pushed models under a remote artifact_root, data and encoder read from remote folders,
MLMD's sqlite and the logs local. Nothing here touches Google Cloud: the remote folders are TF's
in-memory file system (ram://), which only tf.io.gfile can read, so each test that passes
proves the read went through gfile (Python's open / os.path would not find the files)."""
import json
import os
import uuid

import pytest
import tensorflow as tf

from models import content_encoder
from pipeline import cli, config as config_lib
from pipeline.config import RunConfig
from pipeline.inputs import PipelineInputs, items_header, prepare_inputs

DATAFLOW_ARGS = ["--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp"]
ITEMS = b"item_id,title,genres\n1,Toy Story,Animation\n2,Heat,Action\n"
ITEMS_WITH_EMBEDDINGS = b"item_id,title,embedding\n1,Toy Story,0.1 0.2\n2,Heat,0.3 0.4\n"
INTERACTIONS = b"user_id,item_id,timestamp,label\nu1,1,100,1\nu1,2,200,0\n"


def _write(path: str, data: bytes) -> None:
    if tf.io.gfile.exists(path):  # ram:// appends to an existing file even in "wb" mode
        tf.io.gfile.remove(path)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


@pytest.fixture
def bucket(monkeypatch):
    """A fresh ram:// "bucket" with data/tiny/{items,interactions}.csv and an encoder folder;
    runner=dataflow accepts ram:// as it accepts gs://."""
    monkeypatch.setattr(config_lib, "REMOTE_PREFIXES", ("gs://", "ram://"))
    root = f"ram://bucket-{uuid.uuid4().hex[:8]}/semids"
    _write(f"{root}/data/tiny/items.csv", ITEMS)
    _write(f"{root}/data/tiny/interactions.csv", INTERACTIONS)
    for name in content_encoder.ENCODER_FILES:
        _write(f"{root}/encoders/enc/{name}", b"not a real model: only its presence is checked")
    yield root
    tf.io.gfile.rmtree(root)


def _dataflow_config(bucket, tmp_path, **kw):
    fields = dict(runner="dataflow", artifact_root=bucket, dataset="csv",
                  data_dir=f"{bucket}/data/tiny", encoder_dir=f"{bucket}/encoders/enc",
                  output_dir=str(tmp_path / "outputs"), results_dir=str(tmp_path / "results"),
                  beam_args=list(DATAFLOW_ARGS))
    fields.update(kw)
    return RunConfig(**fields)


# --- reads through tf.io.gfile -------------------------------------------------------------------

def test_items_header_reads_a_remote_file(bucket):
    assert not os.path.exists(f"{bucket}/data/tiny/items.csv")  # not on the local file system
    header = items_header(f"{bucket}/data/tiny")
    assert header.text_field_names == ("title", "genres") and header.embedding is None


def test_prepare_inputs_reads_remote_data_and_encoder(bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = prepare_inputs(_dataflow_config(bucket, tmp_path))
    assert inputs == PipelineInputs(f"{bucket}/data/tiny", f"{bucket}/encoders/enc",
                                    ("title", "genres"))
    assert not os.path.exists(tmp_path / "ram:")  # no local folder named after the scheme
    assert not os.path.exists(tmp_path / "outputs" / "encoders")  # nothing assembled locally


def test_a_remote_encoder_folder_missing_a_file_is_named(bucket, tmp_path):
    tf.io.gfile.remove(f"{bucket}/encoders/enc/{content_encoder.TOKENIZER_FILE}")
    with pytest.raises(FileNotFoundError, match="lacks tokenizer.json"):
        prepare_inputs(_dataflow_config(bucket, tmp_path))


def test_a_remote_data_dir_missing_a_file_is_named(bucket, tmp_path):
    tf.io.gfile.remove(f"{bucket}/data/tiny/interactions.csv")
    with pytest.raises(FileNotFoundError, match="missing: interactions.csv"):
        prepare_inputs(_dataflow_config(bucket, tmp_path))


def test_items_with_embeddings_need_no_encoder(bucket, tmp_path):
    _write(f"{bucket}/data/tiny/items.csv", ITEMS_WITH_EMBEDDINGS)
    inputs = prepare_inputs(_dataflow_config(bucket, tmp_path, encoder_dir=None))
    assert inputs.encoder_dir is None and inputs.text_fields == ("title",)


def test_example_gen_fingerprints_a_remote_items_file(bucket):
    from components.example_gen.component import _fingerprint
    path = f"{bucket}/data/tiny/items.csv"
    assert _fingerprint(path).startswith(f"{path}:size={len(ITEMS)}:")
    assert _fingerprint(f"{bucket}/data/tiny/absent.csv") == ""


# --- RunConfig: what runner=dataflow requires ----------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    ({"artifact_root": None}, r"needs artifact_root on GCS.*--artifact_root gs://"),
    ({"artifact_root": "/local/semids"}, r"needs artifact_root on GCS"),
    ({"dataset": "ml100k", "data_dir": None},
     r"dataset=ml100k is prepared on this machine.*semids prepare-data --dataset ml100k.*"
     r"gsutil cp .*--dataset csv --data_dir gs://B/semids/data/ml100k"),
    ({"data_dir": "/local/tiny"},
     r"needs data_dir on GCS.*gsutil cp /local/tiny/\*\.csv gs://B/semids/data/tiny/"),
    ({"encoder_dir": None},
     r"needs encoder_dir on GCS.*semids prepare-data.*gsutil cp -r \S*outputs/encoders/"
     r"all-MiniLM-L6-v2-int8 gs://B/semids/encoders/.*--encoder_dir gs://B/semids/encoders/"
     r"all-MiniLM-L6-v2-int8"),
    ({"encoder_dir": "/local/enc"},
     r"gsutil cp -r /local/enc gs://B/semids/encoders/` and pass --encoder_dir "
     r"gs://B/semids/encoders/enc"),
])
def test_dataflow_paths_must_be_remote_and_the_error_says_what_to_do(tmp_path, kw, match):
    fields = dict(runner="dataflow", artifact_root="gs://B/semids", dataset="csv",
                  data_dir="gs://B/semids/data/tiny", encoder_dir="gs://B/semids/encoders/enc",
                  output_dir=str(tmp_path / "outputs"))
    fields.update(kw)
    config = RunConfig(**fields)  # a config is fine to show or compile: checked when run
    with pytest.raises(ValueError, match=match):
        config.validate_dataflow_paths()


def test_a_local_data_dir_is_refused_before_anything_is_read(tmp_path, bucket):
    config = _dataflow_config(bucket, tmp_path, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="needs data_dir on GCS"):
        prepare_inputs(config)


def test_other_runners_take_local_paths():
    RunConfig(runner="direct").validate_dataflow_paths()


def test_output_dir_must_be_local():
    with pytest.raises(ValueError, match=r"output_dir must be a local folder.*artifact_root"):
        RunConfig(output_dir="gs://B/outputs")


def test_artifact_root_moves_pipeline_root_and_serving_only(tmp_path):
    config = RunConfig(artifact_root="gs://B/semids", output_dir=str(tmp_path))
    assert config.pipeline_root == "gs://B/semids/pipelines/semids"
    assert config.serving_model_dir == "gs://B/semids/serving/semids"
    assert config.metadata_path == str(tmp_path / "metadata" / "semids" / "metadata.db")
    default = RunConfig(output_dir=str(tmp_path))
    assert default.pipeline_root == str(tmp_path / "pipelines" / "semids")
    assert default.serving_model_dir == str(tmp_path / "serving" / "semids")


def test_a_remote_data_dir_is_kept_as_it_is():
    config = RunConfig(dataset="csv", data_dir="gs://B/semids/data/ml100k")
    assert config.prepared_data_dir == "gs://B/semids/data/ml100k"
    assert config.dataset_name == "ml100k"


def test_the_readme_command_line(capsys):
    """docs/deploy.md, "Runners": the flags of the DataflowRunner command give a config that passes the
    checks and the Beam args Dataflow needs."""
    from pipeline.runners import beam_pipeline_args
    argv = ["show-config", "--runner", "dataflow", "--artifact_root", "gs://B/semids",
            "--dataset", "csv", "--data_dir", "gs://B/semids/data/ml100k",
            "--encoder_dir", "gs://B/semids/encoders/all-MiniLM-L6-v2-int8",
            "--beam_arg=--project=P", "--beam_arg=--region=R",
            "--beam_arg=--temp_location=gs://B/tmp"]
    assert cli.main(argv) == 0
    config = RunConfig.from_dict(json.loads(capsys.readouterr().out))
    assert config.artifact_root == "gs://B/semids"
    config.validate_dataflow_paths()
    args = beam_pipeline_args(config)
    assert args[0] == "--runner=DataflowRunner"
    assert any(a.startswith("--setup_file=") for a in args)


# --- the pipeline built for it (not run) ----------------------------------------------------------

def test_create_pipeline_puts_artifacts_remote_and_mlmd_local(bucket, tmp_path):
    from pipeline import pipeline as pipeline_lib
    config = _dataflow_config(bucket, tmp_path)
    inputs = prepare_inputs(config)
    pipeline = pipeline_lib.create_pipeline(config, inputs)

    assert pipeline.pipeline_info.pipeline_root == f"{bucket}/pipelines/semids"
    by_id = {c.id: c for c in pipeline.components}
    push = by_id["Pusher"].exec_properties["push_destination"]
    assert f'"base_directory": "{bucket}/serving/semids"' in str(push)
    assert by_id["ContentEncoderImporter"].exec_properties["artifact_uri"] == (
        f"{bucket}/encoders/enc")
    for gen in ("ItemExampleGen", "InteractionExampleGen"):
        assert by_id[gen].exec_properties["input_base"] == f"{bucket}/data/tiny"
    assert f"{bucket}/data/tiny/items.csv:size=" in str(
        by_id["InteractionExampleGen"].exec_properties["custom_config"])

    sqlite = pipeline.metadata_connection_config.sqlite.filename_uri
    assert sqlite == config.metadata_path and sqlite.startswith(str(tmp_path / "outputs"))

    args = pipeline.beam_pipeline_args
    assert args[0] == "--runner=DataflowRunner"
    for flag in ("--project", "--region", "--temp_location", "--setup_file"):
        assert any(a.startswith(flag + "=") for a in args), flag
