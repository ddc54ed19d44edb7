"""InteractionFeatures: a TFX Beam component that splits interactions by time into
train/validation/eval, holds out a seeded share of items as new at eval (and optionally a second,
disjoint share as new in validation), and adds the history features and the per-row flags
is_new_item, is_new_user and is_tail_item (rules: core.py's docstring).

    from components.interaction_features.component import InteractionFeatures
    features_gen = InteractionFeatures(
        examples=example_gen.outputs['examples'], eval_fraction=cfg.eval_fraction,
        validation_fraction=cfg.validation_fraction, new_item_fraction=cfg.new_item_fraction,
        seed=cfg.seed, history_length=cfg.history_length,
        validation_new_item_fraction=cfg.validation_new_item_fraction)  # optional, default 0
    features_gen.outputs['examples']  # Examples with splits train, validation, eval

Input channel key (spec, executor input_dict): `input_examples` (ComponentSpec forbids the same
name in INPUTS and OUTPUTS); output key: `examples`.
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
from components.interaction_features import core
from components.interaction_features.executor import (EXAMPLES_KEY, INPUT_EXAMPLES_KEY,
                                                      WINDOW_EXAMPLES_KEY, Executor)


class InteractionFeaturesSpec(ComponentSpec):
    """InteractionFeatures component spec."""

    PARAMETERS = {
        core.EVAL_FRACTION_KEY: ExecutionParameter(type=float),
        core.VALIDATION_FRACTION_KEY: ExecutionParameter(type=float),
        core.NEW_ITEM_FRACTION_KEY: ExecutionParameter(type=float),
        core.VALIDATION_NEW_ITEM_FRACTION_KEY: ExecutionParameter(type=float),
        core.SEED_KEY: ExecutionParameter(type=int),
        core.HISTORY_LENGTH_KEY: ExecutionParameter(type=int),
        # Span mode (core.py): the newest window_spans spans are read, the newest evaluated.
        core.WINDOW_SPANS_KEY: ExecutionParameter(type=int, optional=True),
        core.TRAIN_NEWEST_SPAN_ONLY_KEY: ExecutionParameter(type=int, optional=True),
        # With train_newest_span_only: the older spans' replayed share (core.plan_spans).
        core.REPLAY_SHARE_KEY: ExecutionParameter(type=float, optional=True),
        # The executor's code (components/fingerprint.py): a code change reruns it.
        fingerprint.CODE_FINGERPRINT_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        INPUT_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        # Earlier spans' Examples (a SpanRangeStrategy Resolver); unused with window_spans 1.
        WINDOW_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    TYPE_ANNOTATION = Process


def _is_plain(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class InteractionFeatures(base_beam_component.BaseBeamComponent):
    """Time split + held-out items + history features over ExampleGen's `all` split."""

    SPEC_CLASS = InteractionFeaturesSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples: types.BaseChannel, *, eval_fraction: Union[float, int],
                 validation_fraction: Union[float, int], new_item_fraction: Union[float, int],
                 seed: int, history_length: int,
                 validation_new_item_fraction: Union[float, int] = 0.0,
                 window_examples: Optional[types.BaseChannel] = None, window_spans: int = 1,
                 train_newest_span_only: bool = False, replay_share: float = 0.0):
        """examples: ExampleGen's Examples (split `all`); the rest as in RunConfig (no defaults
        here, so RunConfig stays the one place they are set; validation_new_item_fraction
        defaults to 0, no validation holdout, like RunConfig's).

        Span mode: window_examples gives earlier spans' Examples; the newest window_spans spans
        (examples' span the newest) are read, the newest evaluated, the earlier ones trained on
        (train_newest_span_only: only the newest of them, plus a seeded sample of the older
        ones, replay_share times its train rows). One span: the time split."""
        if _is_plain(replay_share):  # not a placeholder / runtime parameter
            core.validate_replay_share(replay_share)
            replay_share = float(replay_share)
        params = (eval_fraction, validation_fraction, new_item_fraction, seed, history_length,
                  validation_new_item_fraction)
        if all(_is_plain(v) for v in params):  # not placeholders / runtime parameters
            core.validate_params(eval_fraction, validation_fraction, new_item_fraction,
                                 history_length, validation_new_item_fraction)
            eval_fraction, validation_fraction, new_item_fraction = (
                float(eval_fraction), float(validation_fraction), float(new_item_fraction))
            validation_new_item_fraction = float(validation_new_item_fraction)
            seed, history_length = int(seed), int(history_length)
        spec = InteractionFeaturesSpec(**{
            INPUT_EXAMPLES_KEY: examples,
            core.EVAL_FRACTION_KEY: eval_fraction,
            core.VALIDATION_FRACTION_KEY: validation_fraction,
            core.NEW_ITEM_FRACTION_KEY: new_item_fraction,
            core.VALIDATION_NEW_ITEM_FRACTION_KEY: validation_new_item_fraction,
            core.SEED_KEY: seed,
            core.HISTORY_LENGTH_KEY: history_length,
            WINDOW_EXAMPLES_KEY: window_examples,
            core.WINDOW_SPANS_KEY: int(window_spans),
            core.TRAIN_NEWEST_SPAN_ONLY_KEY: int(bool(train_newest_span_only)),
            core.REPLAY_SHARE_KEY: replay_share,
            fingerprint.CODE_FINGERPRINT_KEY: fingerprint.code_fingerprint(Executor.__module__),
            EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
        })
        super().__init__(spec=spec)
