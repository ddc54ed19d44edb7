"""StrictExampleValidator: TFX's ExampleValidator whose anomalies stop the run."""
from tfx.components import ExampleValidator
from tfx.dsl.components.base import executor_spec

from components.example_validator import executor


class StrictExampleValidator(ExampleValidator):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
