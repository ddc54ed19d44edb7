"""SpmTrainer: a TFX Beam component that learns SentencePiece vocabularies over the Semantic-ID
"sentences" of the training impressions, one model per table budget (Singh et al. 2024's SPM
representation; rules, the symbol encoding and how Transform uses the models: docs/spm.md).

    from components.spm_trainer.component import SpmTrainer
    spm_trainer = SpmTrainer(examples=features_gen.outputs["examples"],
                             catalog=sid_gen.outputs["catalog"],
                             vocab_sizes=[cfg.item_table_size], model_type="unigram",
                             seed=cfg.seed, max_sentences=1_000_000)
    spm_trainer.outputs["spm_models"]   # SpmModels: spm_<B>.model / .vocab, spm_summary.json

Inputs: `examples` (InteractionFeatures' Examples; only the `train` split is read: its rows'
item_id are the training impressions) and `catalog` (ItemCatalog: catalog.tsv, metadata.json).
Every budget must be >= sid_length x codebook_size + 1 (checked against the catalog when it
runs). Impressions whose item is not in the catalog are skipped and counted in the summary.
"""
from __future__ import annotations

import json
from typing import Sequence, Union

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.types.system_executions import Process

from components import fingerprint
from components.artifacts import ItemCatalog, SpmModels
from components.spm_trainer import core
from components.spm_trainer.executor import Executor


class SpmTrainerSpec(ComponentSpec):
    """SpmTrainer component spec (vocab_sizes: a JSON list of ints)."""

    PARAMETERS = {
        core.VOCAB_SIZES_KEY: ExecutionParameter(type=str),
        core.MODEL_TYPE_KEY: ExecutionParameter(type=str),
        core.SEED_KEY: ExecutionParameter(type=int),
        core.MAX_SENTENCES_KEY: ExecutionParameter(type=int),
        # The executor's code (components/fingerprint.py): a code change reruns it.
        fingerprint.CODE_FINGERPRINT_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        core.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        core.CATALOG_KEY: ChannelParameter(type=ItemCatalog),
    }
    OUTPUTS = {
        core.SPM_MODELS_KEY: ChannelParameter(type=SpmModels),
    }
    TYPE_ANNOTATION = Process


class SpmTrainer(base_beam_component.BaseBeamComponent):
    """Train-split impressions + ItemCatalog -> SpmModels (one SentencePiece model per budget)."""

    SPEC_CLASS = SpmTrainerSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples: types.BaseChannel, catalog: types.BaseChannel,
                 vocab_sizes: Sequence[int], model_type: str = "unigram",
                 seed: Union[int, types.Property] = 0,
                 max_sentences: Union[int, types.Property] = 1_000_000):
        """examples: InteractionFeatures' Examples (train split read); catalog: ItemCatalog;
        vocab_sizes: the table budgets B (one model each); model_type: "unigram" or "bpe";
        seed: of the impression sample (and sentencepiece); max_sentences: at most this many
        training impressions are used (a seeded uniform sample when there are more)."""
        sizes = [int(v) if isinstance(v, int) and not isinstance(v, bool) else v
                 for v in vocab_sizes]
        plain = isinstance(seed, int) and isinstance(max_sentences, int)
        if plain:
            sizes = core.validate_params(sizes, model_type, seed, max_sentences)
        spec = SpmTrainerSpec(**{
            core.EXAMPLES_KEY: examples,
            core.CATALOG_KEY: catalog,
            core.VOCAB_SIZES_KEY: json.dumps(sizes),
            core.MODEL_TYPE_KEY: model_type,
            core.SEED_KEY: seed,
            core.MAX_SENTENCES_KEY: max_sentences,
            fingerprint.CODE_FINGERPRINT_KEY: fingerprint.code_fingerprint(Executor.__module__),
            core.SPM_MODELS_KEY: types.Channel(type=SpmModels),
        })
        super().__init__(spec=spec)
