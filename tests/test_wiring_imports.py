"""Settings and wiring load no model code.

`crossfade.pipeline.configs`, `crossfade.pipeline.pipeline` and `crossfade.kubeflow.runner`
build and compile the pipeline: in `crossfade compile`, and in every KFP step's container
before its executor starts; `crossfade --help` builds the command line's parser. None of them
needs the model (`crossfade.components.trainer.model`, `.train`, `.export`, the Tuner's
`crossfade.components.tuner.tuning` and TensorFlow Recommenders under them), which only the
Trainer's `run_fn` and the Tuner's `tuner_fn` run: importing it there costs start-up time in
every step, and ties settings to model code. The wiring is built with and without the Tuner.

TFX itself tries to import tensorflow_recommenders: `tfx.components` (and `tfx.v1`) import the
BulkInferrer executor, which runs `importlib.import_module("tensorflow_recommenders")` under
`except ImportError` ("Workarounds for importing extra dependencies"). So whether the module is
in `sys.modules` says nothing about crossfade. Each check runs in a fresh interpreter in which
tensorflow_recommenders cannot be imported, and records the stack of every attempt: the
wiring must still build and compile, no attempt may come from a crossfade file, and none of the
model modules may be loaded. A failure shows the import chain that broke the rule.
"""
import json
import os
import subprocess
import sys

from crossfade.components.listening_data.simulator import generator

RECOMMENDERS = "tensorflow_recommenders"
MODEL_MODULES = ("crossfade.components.trainer.model", "crossfade.components.trainer.train",
                 "crossfade.components.trainer.export", "crossfade.components.tuner.tuning")
REPORT = "WIRING-IMPORTS-REPORT "

# Run first in the child: refuses tensorflow_recommenders, records who asked for it (and who
# first imported each model module), prints the record at exit, even after an error.
PROBE = f"""
import atexit, json, os, sys, traceback

RECOMMENDERS = {RECOMMENDERS!r}
MODEL_MODULES = {MODEL_MODULES!r}
attempts, chains = [], {{}}


def _stack():
    return [(frame.filename, frame.lineno, frame.line) for frame in traceback.extract_stack()
            if not frame.filename.startswith("<frozen")
            and not frame.filename.endswith(os.path.join("importlib", "__init__.py"))][:-2]


class _Probe:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in MODEL_MODULES and name not in chains:
            chains[name] = _stack()
        if name == RECOMMENDERS:
            crossfade_files = {{getattr(module, "__file__", None)
                               for key, module in list(sys.modules.items())
                               if key.split(".")[0] == "crossfade"}}
            stack = _stack()
            attempts.append({{"stack": stack, "by_crossfade": stack[-1][0] in crossfade_files}})
            raise ModuleNotFoundError(f"No module named {{name!r}} (refused by the test)")
        return None


sys.meta_path.insert(0, _Probe())


@atexit.register
def _report():
    loaded = {{name: name in sys.modules for name in MODEL_MODULES + (RECOMMENDERS,)}}
    record = {{"attempts": attempts, "chains": chains, "loaded": loaded}}
    print({REPORT!r} + json.dumps(record), flush=True)
"""

WIRING = """
import crossfade.pipeline.configs
import crossfade.pipeline.pipeline
import crossfade.kubeflow.runner
from crossfade.kubeflow import runner
from crossfade.pipeline.configs import PipelineConfig
from crossfade.pipeline.pipeline import create_pipeline

data_dir, output_dir = sys.argv[1:]
config = PipelineConfig(data_dir=data_dir, output_dir=output_dir)
create_pipeline(config)
runner.compile_pipeline(config, os.path.join(output_dir, "spec.yaml"), image="img")
tuned = PipelineConfig(data_dir=data_dir, output_dir=output_dir, tune=True)  # + the Tuner
create_pipeline(tuned)
runner.compile_pipeline(tuned, os.path.join(output_dir, "tuned.yaml"), image="img")
"""

HELP = """
from crossfade.pipeline import cli

cli.build_parser()
"""


def _chain(stack):
    return "\n".join(f"  {path}:{line}: {code}" for path, line, code in stack)


def _imports(body, tmp_path, *args):
    """The child's record of `body`; fails, with its output, if the child fails."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE + body, *map(str, args)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(REPORT)]
    record = json.loads(lines[-1][len(REPORT):]) if lines else {"attempts": []}
    chains = "\n\n".join(_chain(attempt["stack"]) for attempt in record["attempts"])
    assert done.returncode == 0, (
        f"the child failed without {RECOMMENDERS}:\n{done.stderr[-6000:]}\n"
        f"its attempts to import {RECOMMENDERS}:\n{chains}")
    return record


def _assert_no_model_code(record):
    from_crossfade = [attempt["stack"] for attempt in record["attempts"]
                      if attempt["by_crossfade"]]
    assert not from_crossfade, f"crossfade imports {RECOMMENDERS}:\n" + "\n\n".join(
        _chain(stack) for stack in from_crossfade)
    loaded = [name for name in MODEL_MODULES if record["loaded"][name]]
    assert not loaded, "model code imported:\n" + "\n\n".join(
        f"{name}, first imported by:\n{_chain(record['chains'].get(name, []))}"
        for name in loaded)
    assert not record["loaded"][RECOMMENDERS]


def test_building_and_compiling_the_pipeline_loads_no_model_code(tmp_path):
    data_dir = tmp_path / "data"
    generator.generate("tiny", str(data_dir), seed=0)
    output_dir = tmp_path / "out"
    record = _imports(WIRING, tmp_path, data_dir, output_dir)
    _assert_no_model_code(record)
    assert (output_dir / "spec.yaml").is_file() and (output_dir / "tuned.yaml").is_file()


def test_the_command_line_parser_loads_no_model_code(tmp_path):
    record = _imports(HELP, tmp_path)
    _assert_no_model_code(record)
    # Nothing on the way to `crossfade --help` even asks for TensorFlow Recommenders.
    assert not record["attempts"], "\n\n".join(
        _chain(attempt["stack"]) for attempt in record["attempts"])
