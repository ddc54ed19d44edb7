"""Transform with one more input channel: the ItemCatalog (Semantic IDs + content embeddings).

TFX's Transform takes `custom_config` as a JSON string fixed when the pipeline is built, so it
cannot carry an artifact produced at run time. This component's spec is TFX's TransformSpec plus
an optional `catalog` channel; its executor writes the catalog's URI into `custom_config` and runs
TFX's own Transform executor, so `preprocessing_fn(inputs, custom_config)` builds its lookups from
the catalog's files (copied into the transform graph as assets). MLMD keeps provenance and
caching: a new catalog reruns Transform.
"""
from typing import Any, Dict, Optional

from tfx import types
from tfx import v1 as tfx
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs
from tfx.types.component_spec import ChannelParameter

from components import artifacts
from components.transform import executor

CATALOG_KEY = executor.CATALOG_KEY


class CatalogTransformSpec(standard_component_specs.TransformSpec):
    INPUTS = {
        **standard_component_specs.TransformSpec.INPUTS,
        CATALOG_KEY: ChannelParameter(type=artifacts.ItemCatalog, optional=True),
    }


class CatalogTransform(base_beam_component.BaseBeamComponent):
    """`tfx.components.Transform` + an optional `catalog` (ItemCatalog) input channel."""

    SPEC_CLASS = CatalogTransformSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, schema: types.BaseChannel, module_file: str,
                 catalog: Optional[types.BaseChannel] = None,
                 splits_config: Optional[tfx.proto.SplitsConfig] = None,
                 custom_config: Optional[Dict[str, Any]] = None):
        # TFX's Transform builds and checks its channels and parameters; reuse them as they are.
        stock = tfx.components.Transform(
            examples=examples, schema=schema, module_file=module_file,
            splits_config=splits_config, custom_config=custom_config)
        # Fresh output channels of the same types: the stock component's are bound to it.
        outputs = {}
        for key, channel in stock.spec.outputs.items():
            outputs[key] = types.Channel(type=channel.type)
            if getattr(channel, "matching_channel_name", None):
                outputs[key].matching_channel_name = channel.matching_channel_name
        spec = CatalogTransformSpec(
            **stock.spec.exec_properties, **stock.spec.inputs, **outputs,
            **({CATALOG_KEY: catalog} if catalog is not None else {}))
        super().__init__(spec=spec)
