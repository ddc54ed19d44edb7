"""SemanticIdGen: a TFX Beam component that gives every catalog item a Semantic ID with the
trained RQ-VAE (tfx_bsl RunInference), breaks collisions and writes the catalog and the SID
report (rules: core.py's and report.py's docstrings).

    from components.semantic_id_gen.component import SemanticIdGen
    sid_gen = SemanticIdGen(embeddings=embedder.outputs["embeddings"],
                            model=rqvae_trainer.outputs["model"],
                            collision_breaker=config.sid_collision_breaker,
                            num_levels=config.rqvae_num_levels,
                            codebook_size=config.rqvae_codebook_size)
    sid_gen.outputs["catalog"]     # ItemCatalog: catalog.tsv, embeddings.npy, metadata.json, items/
    sid_gen.outputs["sid_report"]  # SidReport: sid_report.json / .md / .png

Inputs: `embeddings` (Examples, split `all`: item_id, embedding, item_text) and `model`
(standard_artifacts.Model; the SavedModel at `<uri>/Format-Serving` with the serving_default and
encode signatures of schemas/features.py).
"""
from __future__ import annotations

from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.types.system_executions import Process

from components import fingerprint
from components.artifacts import ItemCatalog, SidReport, SpmModels
from components.semantic_id_gen import core
from components.semantic_id_gen.executor import Executor


class SemanticIdGenSpec(ComponentSpec):
    """SemanticIdGen component spec."""

    PARAMETERS = {
        core.COLLISION_BREAKER_KEY: ExecutionParameter(type=bool),
        core.NUM_LEVELS_KEY: ExecutionParameter(type=int),
        core.CODEBOOK_SIZE_KEY: ExecutionParameter(type=int),
        core.SID_MODE_KEY: ExecutionParameter(type=str, optional=True),
        # The executor's code (components/fingerprint.py): a code change reruns it.
        fingerprint.CODE_FINGERPRINT_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        core.EMBEDDINGS_KEY: ChannelParameter(type=standard_artifacts.Examples),
        core.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        # The last catalog of this pipeline (a Resolver): its SIDs are kept in "reuse" mode and
        # compared with the new ones on a refresh.
        core.PREVIOUS_CATALOG_KEY: ChannelParameter(type=ItemCatalog, optional=True),
        # The reused SentencePiece models, for the catalog's lineage only.
        core.SPM_MODELS_KEY: ChannelParameter(type=SpmModels, optional=True),
    }
    OUTPUTS = {
        core.CATALOG_KEY: ChannelParameter(type=ItemCatalog),
        core.SID_REPORT_KEY: ChannelParameter(type=SidReport),
    }
    TYPE_ANNOTATION = Process


class SemanticIdGen(base_beam_component.BaseBeamComponent):
    """Embeddings + RQ-VAE -> ItemCatalog (item_id -> Semantic ID, embedding) + SidReport."""

    SPEC_CLASS = SemanticIdGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, embeddings: types.BaseChannel, model: types.BaseChannel, *,
                 num_levels: Union[int, types.Property], codebook_size: Union[int, types.Property],
                 collision_breaker: Union[bool, types.Property] = True,
                 sid_mode: str = "train",
                 previous_catalog: Optional[types.BaseChannel] = None,
                 spm_models: Optional[types.BaseChannel] = None):
        """embeddings: ContentEmbedder's Examples (split `all`); model: the RQ-VAE Trainer's
        Model; num_levels / codebook_size: the RQ-VAE's L and K (as in RunConfig; checked
        against the codes it gives); collision_breaker: append the TIGER collision-breaker
        code (SIDs of L + 1 codes, all distinct) or keep the L codes; sid_mode: "train" codes
        every item, "reuse" keeps `previous_catalog`'s SIDs and codes only new items (the model
        is then the RQ-VAE that coded that catalog); previous_catalog alone in "train" mode
        reports how many existing items changed SID; spm_models: recorded in the lineage."""
        if sid_mode not in core.SID_MODES:
            raise ValueError(f"SemanticIdGen: sid_mode must be one of {core.SID_MODES}, "
                             f"got {sid_mode!r}")
        if isinstance(num_levels, int) and isinstance(codebook_size, int):
            core.validate_params(num_levels, codebook_size)
        if isinstance(collision_breaker, (bool, int)):
            collision_breaker = bool(collision_breaker)
        spec = SemanticIdGenSpec(**{
            core.EMBEDDINGS_KEY: embeddings,
            core.MODEL_KEY: model,
            core.COLLISION_BREAKER_KEY: collision_breaker,
            core.NUM_LEVELS_KEY: num_levels,
            core.CODEBOOK_SIZE_KEY: codebook_size,
            core.SID_MODE_KEY: sid_mode,
            core.PREVIOUS_CATALOG_KEY: previous_catalog,
            core.SPM_MODELS_KEY: spm_models,
            fingerprint.CODE_FINGERPRINT_KEY: fingerprint.code_fingerprint(Executor.__module__),
            core.CATALOG_KEY: types.Channel(type=ItemCatalog),
            core.SID_REPORT_KEY: types.Channel(type=SidReport),
        })
        super().__init__(spec=spec)
