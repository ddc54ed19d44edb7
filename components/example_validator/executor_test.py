"""StrictExampleValidator's executor on hand-made statistics and a schema: a clean split passes,
an anomaly stops the run with a message naming the split and the feature."""
import os

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import json_utils

from components.example_validator import executor

SCHEMA = """
feature { name: "rating" type: INT presence { min_fraction: 1.0 min_count: 1 }
          value_count { min: 1 max: 1 } }
"""
RATING = """
features { path { step: "rating" } type: INT
  num_stats { common_stats { num_non_missing: 10 min_num_values: 1 max_num_values: 1
                             avg_num_values: 1.0 tot_num_values: 10 }
              min: 1.0 max: 5.0 } }
"""
# A column the schema does not know: TFDV reports it as a new column.
SURPRISE = """
features { path { step: "surprise" } type: STRING
  string_stats { common_stats { num_non_missing: 10 min_num_values: 1 max_num_values: 1
                                avg_num_values: 1.0 tot_num_values: 10 }
                 unique: 2 } }
"""


def _stats_artifact(tmp_path, splits):
    """An ExampleStatistics artifact with one FeatureStats.pb per split, as StatisticsGen's."""
    art = standard_artifacts.ExampleStatistics()
    art.uri = str(tmp_path / "statistics")
    art.split_names = artifact_utils.encode_split_names(list(splits))
    for split, features in splits.items():
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        text_format.Parse(f"datasets {{ num_examples: 10 {features} }}", stats)
        split_dir = artifact_utils.get_split_uri([art], split)
        os.makedirs(split_dir)
        with open(os.path.join(split_dir, "FeatureStats.pb"), "wb") as f:
            f.write(stats.SerializeToString())
    return art


def _run(tmp_path, splits, exclude_splits=()):
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    os.makedirs(schema.uri)
    with open(os.path.join(schema.uri, "schema.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(text_format.Parse(SCHEMA, schema_pb2.Schema())))
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    output_dict = {specs.ANOMALIES_KEY: [anomalies]}
    executor.Executor().Do(
        {specs.STATISTICS_KEY: [_stats_artifact(tmp_path, splits)], specs.SCHEMA_KEY: [schema]},
        output_dict, {specs.EXCLUDE_SPLITS_KEY: json_utils.dumps(list(exclude_splits))})
    return anomalies


def test_clean_statistics_pass(tmp_path):
    anomalies = _run(tmp_path, {"train": RATING, "eval": RATING})
    assert artifact_utils.decode_split_names(anomalies.split_names) == ["train", "eval"]
    assert executor.read_anomalies([anomalies]) == []
    for split in ("train", "eval"):  # what TFX's executor wrote, read back
        assert os.path.isfile(os.path.join(anomalies.uri, f"Split-{split}",
                                           executor.ANOMALIES_FILE))


def test_an_anomaly_stops_the_run_naming_split_and_feature(tmp_path):
    with pytest.raises(executor.AnomaliesFoundError) as err:
        _run(tmp_path, {"train": RATING, "eval": RATING + SURPRISE})
    message = str(err.value)
    assert message.startswith("ExampleValidator found anomalies; the run stops before training:")
    lines = message.splitlines()[1:]
    assert len(lines) == 1, message
    assert lines[0].startswith("  split 'eval', feature 'surprise': New column"), message


def test_excluded_splits_are_not_validated(tmp_path):
    anomalies = _run(tmp_path, {"train": RATING, "eval": RATING + SURPRISE},
                     exclude_splits=["eval"])
    assert artifact_utils.decode_split_names(anomalies.split_names) == ["train"]
    assert executor.read_anomalies([anomalies]) == []
