"""ContentEmbedder: a TFX Beam component that gives every item a content embedding (rules:
core.py's docstring).

    from components.artifacts import ContentEncoder
    from components.content_embedder.component import ContentEmbedder
    encoder = tfx.dsl.Importer(source_uri=encoder_dir,  # models.content_encoder.prepare_encoder_dir
                               artifact_type=ContentEncoder).with_id("encoder_importer")
    embedder = ContentEmbedder(items=item_gen.outputs["examples"],
                               encoder=encoder.outputs["result"],
                               text_fields=config.item_text_fields,  # None: see core.py
                               batch_size=config.embed_batch_size,  # texts per bundle
                               num_threads=1, allow_spinning=False,  # pipeline/runners.py
                               parallel_calls=2)
    embedder.outputs["embeddings"]  # Examples, split `all`: item_id, embedding, item_text

Items with a precomputed `embedding` feature (items.csv's embedding column) are used as is and
the encoder is not run (the `encoder` channel may then be left out). Besides the split,
`<embeddings uri>/embedding_summary.json` holds num_items, embedding_dim, source, encoder_uri,
text_fields, num_empty_text, seconds.
"""
from __future__ import annotations

from typing import Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.types.system_executions import Process

from components import fingerprint
from components.artifacts import ContentEncoder
from components.content_embedder import core
from components.content_embedder.executor import (EMBEDDINGS_KEY, ENCODER_KEY, ITEMS_KEY,
                                                  Executor)


class ContentEmbedderSpec(ComponentSpec):
    """ContentEmbedder component spec."""

    PARAMETERS = {
        # JSON list of text feature names; "" = title, year, genres (if present), then the rest
        # sorted by name.
        core.TEXT_FIELDS_KEY: ExecutionParameter(type=str),
        core.BATCH_SIZE_KEY: ExecutionParameter(type=int),
        # onnxruntime threads per model call, spinning (1 / 0), model calls at once per worker
        # process; absent: the encoder's defaults (one call at a time). pipeline/runners.py
        # content_embedder_plan sets them from the RunConfig.
        core.NUM_THREADS_KEY: ExecutionParameter(type=int, optional=True),
        core.ALLOW_SPINNING_KEY: ExecutionParameter(type=int, optional=True),
        core.PARALLEL_CALLS_KEY: ExecutionParameter(type=int, optional=True),
        # The executor's code (components/fingerprint.py): a code change reruns it.
        fingerprint.CODE_FINGERPRINT_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        ITEMS_KEY: ChannelParameter(type=standard_artifacts.Examples),
        ENCODER_KEY: ChannelParameter(type=ContentEncoder, optional=True),
    }
    OUTPUTS = {
        EMBEDDINGS_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    TYPE_ANNOTATION = Process


class ContentEmbedder(base_beam_component.BaseBeamComponent):
    """Items (Examples, split `all`) -> Examples[all] of item_id, embedding, item_text."""

    SPEC_CLASS = ContentEmbedderSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, items: types.BaseChannel, encoder: Optional[types.BaseChannel] = None,
                 text_fields: Optional[Sequence[str]] = None,
                 batch_size: int = core.DEFAULT_BATCH_SIZE, num_threads: Optional[int] = None,
                 allow_spinning: Optional[bool] = None, parallel_calls: Optional[int] = None):
        """items: the items ExampleGen's Examples; encoder: a ContentEncoder channel (required
        unless the items carry precomputed embeddings); text_fields: the features joined into
        the embedded text, in order (None: the default order of core.py); batch_size: texts
        per bundle handed to the encoder, which sorts them by length and cuts its model calls
        by a padded-token budget; num_threads: onnxruntime threads per model call;
        allow_spinning: onnxruntime thread spinning (False when several workers share the
        cores); parallel_calls: model calls at once per worker process (threads); None: the
        encoder's defaults (one call at a time)."""
        if isinstance(batch_size, int):  # not a placeholder / runtime parameter
            batch_size = core.check_batch_size(batch_size)
        num_threads = core.check_num_threads(num_threads)
        parallel_calls = core.check_num_threads(parallel_calls, core.PARALLEL_CALLS_KEY)
        if allow_spinning is not None:
            allow_spinning = int(bool(allow_spinning))
        if text_fields is None or isinstance(text_fields, (list, tuple)):
            text_fields = core.encode_text_fields(text_fields)
        spec = ContentEmbedderSpec(**{
            ITEMS_KEY: items,
            ENCODER_KEY: encoder,
            core.TEXT_FIELDS_KEY: text_fields,
            core.BATCH_SIZE_KEY: batch_size,
            core.NUM_THREADS_KEY: num_threads,
            core.ALLOW_SPINNING_KEY: allow_spinning,
            core.PARALLEL_CALLS_KEY: parallel_calls,
            fingerprint.CODE_FINGERPRINT_KEY: fingerprint.code_fingerprint(Executor.__module__),
            EMBEDDINGS_KEY: types.Channel(type=standard_artifacts.Examples),
        })
        super().__init__(spec=spec)
