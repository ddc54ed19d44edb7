"""ExampleValidator that stops the run on anomalies, naming them.

TFX's ExampleValidator only records anomalies in its output artifact; training would go on with
bad data. This executor runs the stock validation, then fails with one line per anomaly
(split, feature, short description) so nothing downstream runs.
"""
from typing import Any, Dict, List

from tfx.components.example_validator import executor as tfx_executor


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


class Executor(tfx_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties: Dict[str, Any]):
        self._found: List[str] = []
        result = super().Do(input_dict, output_dict, exec_properties)
        if self._found:
            raise AnomaliesFoundError(
                "ExampleValidator found anomalies; the run stops before training:\n  "
                + "\n  ".join(self._found))
        return result

    def _Validate(self, inputs, outputs):
        anomalies = super()._Validate(inputs, outputs)
        split = outputs.get("schema_diff_path", "?").rstrip("/").split("Split-")[-1]
        self._found.extend(describe_anomalies(split, anomalies))
        return anomalies
