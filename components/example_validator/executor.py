"""ExampleValidator that stops the run on anomalies, naming them.

TFX's ExampleValidator only records anomalies in its output artifact; training would go on with
bad data. This executor runs the stock executor as it is (super().Do), then reads back what it
wrote, the Anomalies proto of every validated split of the `anomalies` artifact, and fails with
one line per anomaly (split, feature, short description) so nothing downstream runs.
"""
import os
from typing import Any, Dict, List

from tensorflow_data_validation.utils import anomalies_util
from tfx import types
from tfx.components.example_validator import executor as tfx_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

# The file TFX's executor writes under each split's folder of the anomalies artifact.
ANOMALIES_FILE = tfx_executor.DEFAULT_FILE_NAME


class AnomaliesFoundError(RuntimeError):
    pass


def describe_anomalies(split: str, anomalies) -> List[str]:
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        desc = info.short_description or info.description
        lines.append(f"split '{split}', feature '{feature}': {desc} ({info.description})")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"split '{split}', dataset: {info.short_description or info.description}")
    return lines


def read_anomalies(anomalies_artifacts: List[types.Artifact]) -> List[str]:
    """One line per anomaly of every split of the (single) ExampleAnomalies artifact."""
    artifact = artifact_utils.get_single_instance(anomalies_artifacts)
    found: List[str] = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE)
        found.extend(describe_anomalies(split, anomalies_util.load_anomalies_binary(path)))
    return found


class Executor(tfx_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties: Dict[str, Any]):
        result = super().Do(input_dict, output_dict, exec_properties)
        found = read_anomalies(output_dict[standard_component_specs.ANOMALIES_KEY])
        if found:
            raise AnomaliesFoundError(
                "ExampleValidator found anomalies; the run stops before training:\n  "
                + "\n  ".join(found))
        return result
