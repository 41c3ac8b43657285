"""StreamQualifier: the TFX component between ExampleGen and Transform (see rules.py)."""
import dataclasses
import json
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from crossfade.components.stream_qualification import executor
from crossfade.components.stream_qualification.rules import QualificationRules


class TopChart(types.Artifact):
    """The most streamed tracks of the last day, after bot removal (top_chart.csv / .json)."""

    TYPE_NAME = "crossfade.TopChart"


class StreamQualifierSpec(ComponentSpec):
    PARAMETERS = {
        executor.RULES_KEY: ExecutionParameter(type=str),
        executor.CHART_SIZE_KEY: ExecutionParameter(type=int),
        # Keys TFX's cache only: a code change must re-run the component.
        "code_version": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        executor.QUALIFIED_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.CHART_KEY: ChannelParameter(type=TopChart),
    }


class StreamQualifier(base_beam_component.BaseBeamComponent):
    """Plays -> qualified, weighted examples without bot plays; counts; the top chart.

    The output examples carry the counts as custom properties (plays_in, streams, short_plays,
    skips, unknown_duration, bot_accounts, bot_plays_removed, examples_out).
    """

    SPEC_CLASS = StreamQualifierSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel,
                 rules: Optional[QualificationRules] = None, chart_size: int = 100,
                 code_version: str = ""):
        spec = StreamQualifierSpec(
            examples=examples,
            rules=json.dumps(dataclasses.asdict(rules or QualificationRules()), sort_keys=True),
            chart_size=chart_size,
            code_version=code_version,
            qualified_examples=types.Channel(type=standard_artifacts.Examples),
            chart=types.Channel(type=TopChart))
        super().__init__(spec=spec)
