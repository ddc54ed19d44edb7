"""Transform with more input channels: the ItemCatalog (Semantic IDs + content embeddings) and
the SentencePiece models over SIDs (SpmModels).

TFX's Transform takes `custom_config` as a JSON string fixed when the pipeline is built, so it
cannot carry an artifact produced at run time. This component's spec is TFX's TransformSpec plus
optional `catalog` and `spm_models` channels; its executor writes their URIs into `custom_config`
and runs TFX's own Transform executor, so `preprocessing_fn(inputs, custom_config)` builds its
lookups and tokenizers from those files (catalog.tsv becomes an asset of the transform graph, the
SentencePiece models op attributes). It also stores the catalog's content embeddings beside the
graph (row-aligned with the catalog rows the graph emits) for dense_content's frozen table.
MLMD keeps provenance and caching: a new catalog or SPM model reruns Transform.
"""
from typing import Any, Dict, Optional

from tfx import types
from tfx import v1 as tfx
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs
from tfx.types.component_spec import ChannelParameter

from components import artifacts
from components.transform import executor

CATALOG_KEY = executor.CATALOG_KEY
SPM_MODELS_KEY = executor.SPM_MODELS_KEY


class CatalogTransformSpec(standard_component_specs.TransformSpec):
    INPUTS = {
        **standard_component_specs.TransformSpec.INPUTS,
        CATALOG_KEY: ChannelParameter(type=artifacts.ItemCatalog, optional=True),
        SPM_MODELS_KEY: ChannelParameter(type=artifacts.SpmModels, optional=True),
    }


class CatalogTransform(base_beam_component.BaseBeamComponent):
    """`tfx.components.Transform` + an optional `catalog` (ItemCatalog) input channel."""

    SPEC_CLASS = CatalogTransformSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, schema: types.BaseChannel,
                 module_file: Optional[str] = None,
                 catalog: Optional[types.BaseChannel] = None,
                 spm_models: Optional[types.BaseChannel] = None,
                 splits_config: Optional[tfx.proto.SplitsConfig] = None,
                 custom_config: Optional[Dict[str, Any]] = None,
                 preprocessing_fn: Optional[str] = None, disable_statistics: bool = False):
        """Exactly one of module_file (a file path; TFX packages it as a wheel) and
        preprocessing_fn (a dotted path importable where the executor runs, e.g.
        "models.ranking.preprocessing.preprocessing_fn" from the installed package)."""
        # TFX's Transform builds and checks its channels and parameters; reuse them as they are.
        stock = tfx.components.Transform(
            examples=examples, schema=schema, module_file=module_file,
            preprocessing_fn=preprocessing_fn, disable_statistics=disable_statistics,
            splits_config=splits_config, custom_config=custom_config)
        # Fresh output channels of the same types: the stock component's are bound to it.
        outputs = {}
        for key, channel in stock.spec.outputs.items():
            outputs[key] = types.Channel(type=channel.type)
            if getattr(channel, "matching_channel_name", None):
                outputs[key].matching_channel_name = channel.matching_channel_name
        spec = CatalogTransformSpec(
            **stock.spec.exec_properties, **stock.spec.inputs, **outputs,
            **{k: v for k, v in ((CATALOG_KEY, catalog), (SPM_MODELS_KEY, spm_models)) if v is not None})
        super().__init__(spec=spec)
        # Stock Transform packages module_file into a wheel (module_path) that Beam workers in
        # other processes install (multi-process DirectRunner, Dataflow); that dependency is
        # registered on `stock`, which is not in the pipeline, so register it on this component.
        if module_file and udf_utils.should_package_user_modules():
            udf_utils.add_user_module_dependency(
                self, standard_component_specs.MODULE_FILE_KEY,
                standard_component_specs.MODULE_PATH_KEY)
