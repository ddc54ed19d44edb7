"""StrictExampleValidator: TFX's ExampleValidator whose anomalies stop the run (executor.py).

    from components.example_validator.component import StrictExampleValidator
    validator = StrictExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                       schema=schema_gen.outputs["schema"])
    validator.outputs["anomalies"]  # ExampleAnomalies, as TFX's (written before the run stops)

Its spec is TFX's ExampleValidatorSpec plus `code_fingerprint`, the fingerprint of the
executor's code (components/fingerprint.py), so that a code change reruns it.
"""
from typing import List, Optional

from tensorflow_data_validation.anomalies.proto import custom_validation_config_pb2
from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components import fingerprint
from components.example_validator import executor


class StrictExampleValidatorSpec(standard_component_specs.ExampleValidatorSpec):
    """TFX's ExampleValidatorSpec + the executor's code fingerprint."""

    PARAMETERS = {
        **standard_component_specs.ExampleValidatorSpec.PARAMETERS,
        fingerprint.CODE_FINGERPRINT_KEY: ExecutionParameter(type=str),
    }


class StrictExampleValidator(base_component.BaseComponent):
    """Statistics + schema -> ExampleAnomalies; any anomaly fails the run, naming it."""

    SPEC_CLASS = StrictExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, statistics: types.BaseChannel, schema: types.BaseChannel,
                 exclude_splits: Optional[List[str]] = None,
                 custom_validation_config: Optional[
                     custom_validation_config_pb2.CustomValidationConfig] = None):
        """As tfx.components.ExampleValidator: statistics (ExampleStatistics), schema (Schema),
        exclude_splits (splits not validated; None: none), custom_validation_config."""
        spec = StrictExampleValidatorSpec(**{
            standard_component_specs.STATISTICS_KEY: statistics,
            standard_component_specs.SCHEMA_KEY: schema,
            standard_component_specs.EXCLUDE_SPLITS_KEY: json_utils.dumps(exclude_splits or []),
            standard_component_specs.CUSTOM_VALIDATION_CONFIG_KEY: custom_validation_config,
            fingerprint.CODE_FINGERPRINT_KEY: fingerprint.code_fingerprint(executor.__name__),
            standard_component_specs.ANOMALIES_KEY: types.Channel(
                type=standard_artifacts.ExampleAnomalies),
        })
        super().__init__(spec=spec)
