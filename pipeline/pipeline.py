"""The crossfade TFX pipeline: wiring only, every setting comes from a PipelineConfig."""
from typing import Optional

from tfx import v1 as tfx
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import transform_pb2

from crossfade.components.evaluator.eval_config import retrieval_eval_config
from crossfade.components.example_gen import listening_example_gen
from crossfade.components.example_gen.schema import PLAYS_SCHEMA_FILE
from crossfade.components.example_gen.split_protocols import EVAL_SPLIT, TRAIN_SPLIT
from crossfade.components.pusher.atomic_pusher import AtomicPusher
from crossfade.components.simulation_gate.component import COMPONENT_ID as GATE_ID
from crossfade.components.simulation_gate.component import SimulationGate
from crossfade.components.simulation_gate.executor import BLESSING_KEY as GATE_BLESSING
from crossfade.components.stream_qualification.component import StreamQualifier
from crossfade.components.trainer.component import CatalogueTrainer
from crossfade.components.tuner.component import CatalogueTuner
from crossfade.pipeline.code_version import code_version
from crossfade.pipeline.configs import PipelineConfig

PREPROCESSING_FN = "crossfade.components.transform.preprocessing.preprocessing_fn"
RUN_FN = "crossfade.components.trainer.train.run_fn"
TUNER_FN = "crossfade.components.tuner.tuning.tuner_fn"
# The Evaluator's `custom_extractors`: TFMA's, evaluating whole batches (the module says when).
EVALUATOR_MODULE = "crossfade.components.evaluator.extractors"


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config: Optional[object] = None
                    ) -> tfx_pipeline.Pipeline:
    """ExampleGen (plays, catalogue) -> StreamQualifier -> Transform -> [Tuner ->] Trainer
    -> Evaluator -> SimulationGate -> Pusher (the Tuner with `config.tune`)."""
    version = code_version()
    plays_gen = listening_example_gen.plays_example_gen(config.data_dir, config.split, version,
                                                        config.timestamp_policy,
                                                        config.like_weight)
    catalogue_gen = listening_example_gen.catalogue_example_gen(config.data_dir, version)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=PLAYS_SCHEMA_FILE)
    qualifier = StreamQualifier(examples=plays_gen.outputs["examples"],
                                rules=config.qualification_rules,
                                chart_size=config.chart_size,
                                code_version=version)
    plays = qualifier.outputs["qualified_examples"]

    transform = tfx.components.Transform(
        examples=plays,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={"code_version": version},
        # Analyse train only, and materialize nothing: the Trainer and the Tuner apply the
        # transform graph to the raw plays as they read them, as evaluation and serving do.
        # Writing transformed examples through Beam cost more than half of Transform's time
        # (profiled on the default data); parsing and transforming in tf.data costs seconds.
        splits_config=transform_pb2.SplitsConfig(analyze=[TRAIN_SPLIT]),
        materialize=False,
        # Pre- and post-transform statistics are read by no component.
        disable_statistics=True)

    # Trials train as the Trainer does (its inputs and settings) and are scored on the raw
    # eval split the Evaluator reads.
    tuner = CatalogueTuner(
        examples=plays,
        transform_graph=transform.outputs["transform_graph"],
        catalogue=catalogue_gen.outputs["examples"],
        chart=qualifier.outputs["chart"],
        eval_examples=plays,
        tuner_fn=TUNER_FN,
        custom_config={**config.tuner_custom_config(), "code_version": version},
    ) if config.tune else None

    trainer = CatalogueTrainer(
        examples=plays,
        transform_graph=transform.outputs["transform_graph"],
        catalogue=catalogue_gen.outputs["examples"],
        chart=qualifier.outputs["chart"],
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        run_fn=RUN_FN,
        custom_config={**config.trainer_custom_config(), "code_version": version})

    # The gate's blessings, not the Evaluator's: the baseline is the latest model that passed
    # both, i.e. the latest pushed.
    latest_blessed_model = tfx.dsl.Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing,
                                       producer_component_id=GATE_ID, output_key=GATE_BLESSING),
    ).with_id("LatestBlessedModelResolver")

    evaluator = tfx.components.Evaluator(
        examples=plays,
        example_splits=[EVAL_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=latest_blessed_model.outputs["model"],
        module_path=EVALUATOR_MODULE,
        eval_config=retrieval_eval_config(
            lift_floor=config.lift_floor, regression_tolerance=config.regression_tolerance,
            min_eval_plays=config.min_eval_plays, min_eval_users=config.min_eval_users,
            diversity_regression_tolerance=config.diversity_regression_tolerance,
            cold_start_regression_tolerance=config.cold_start_regression_tolerance,
            index_recall_floor=config.index_recall_floor))

    gate = SimulationGate(
        model=trainer.outputs["model"],
        evaluator_blessing=evaluator.outputs["blessing"],
        data_dir=config.data_dir,
        serving_base_path=config.serving_base_path,
        settings=config.simulation_gate,
        code_version=version).with_id(GATE_ID)

    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=gate.outputs[GATE_BLESSING],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=config.serving_base_path)))

    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[plays_gen, catalogue_gen, schema_gen, qualifier, transform,
                    *([tuner] if tuner else []), trainer, latest_blessed_model, evaluator,
                    gate, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args))
