"""Loads a SavedModel in TensorFlow's C++ runtime, as TF Serving does, and runs requests.

TF Serving loads a version with `tensorflow::LoadSavedModel(session_options, run_options,
export_dir, {"serve"}, &bundle)`, replays `assets.extra/tf_serving_warmup_requests` (a failing
record fails the load) and answers Predict with `Session::Run` on the tensor names of the
request's SignatureDef. `saved_model_check.cc` does exactly that against the C++ runtime in the
TensorFlow wheel (`libtensorflow_cc.so.2`), so a model that only Python can run — a
`tf.py_function` (op EagerPyFunc), a custom op — fails here, naming the op, before a rollout.

Contract of `run_check(export_dir, calls)`:

* The binary is compiled with g++ on first use (`RuntimeCheckError` if that fails,
  `CompilerMissingError` without g++) and cached under `$CROSSFADE_CACHE_DIR` (default
  `~/.cache/crossfade/runtime_check`) in `<key>/saved_model_check`; the key hashes the source,
  the TensorFlow version and the compile flags, and a build lands by atomic rename.
* Every warmup record is replayed first (its inputs decoded from the PredictionLog), then each
  of `calls` — (signature name, {input key: ndarray}) — once, in a single process.
* The report (`CheckReport`) gives: whether LoadSavedModel succeeded and its error, ops the
  runtime does not register (or has no CPU kernel for) — from a scan of the MetaGraph's graph
  and function library and from the errors TensorFlow raises —, the signatures (input / output
  keys, tensor names, dtypes, shapes with -1 for unknown dimensions), each call's outputs
  ({output key: ndarray}, strings as object arrays of bytes) or error, load time in seconds,
  and the process's VmRSS / VmHWM in KiB after all calls (and VmRSS before loading).

Request and response files between Python and C++: a sequence of calls, each a signature name
and NamedTensorProtos; see the header of `saved_model_check.cc`.
"""
import dataclasses
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from crossfade.serving import tensor_proto, warmup

SOURCE = Path(__file__).with_name("saved_model_check.cc")
BINARY_NAME = "saved_model_check"
CACHE_ENV = "CROSSFADE_CACHE_DIR"
DEFAULT_CACHE = Path("~/.cache/crossfade/runtime_check")
CXX_ENV = "CXX"
Inputs = Dict[str, np.ndarray]
Call = Tuple[str, Inputs]


class RuntimeCheckError(RuntimeError):
    """The check could not run: the build failed or the checker crashed."""


class CompilerMissingError(RuntimeCheckError):
    """No C++ compiler to build the checker with."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    key: str  # the signature's input / output key
    name: str  # graph tensor name, e.g. "serving_default_k:0"
    dtype: str  # e.g. "DT_STRING"
    shape: Optional[Tuple[int, ...]]  # -1 = unknown dimension; None = unknown rank


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    name: str
    method: str
    inputs: Tuple[TensorInfo, ...]
    outputs: Tuple[TensorInfo, ...]


@dataclasses.dataclass(frozen=True)
class CallResult:
    signature: str
    ok: bool
    error: str
    seconds: float
    outputs: Dict[str, np.ndarray]  # empty when not ok


@dataclasses.dataclass(frozen=True)
class CheckReport:
    export_dir: str
    loaded: bool  # LoadSavedModel succeeded
    load_error: str
    load_seconds: float
    unregistered_ops: Tuple[str, ...]
    ops_without_cpu_kernel: Tuple[str, ...]
    signatures: Tuple[SignatureInfo, ...]
    warmup: Tuple[CallResult, ...]  # one per warmup record, in file order
    calls: Tuple[CallResult, ...]  # one per requested call, in order
    vm_rss_before_load_kb: int
    vm_rss_kb: int
    vm_hwm_kb: int

    @property
    def warmup_failures(self) -> List[CallResult]:
        return [result for result in self.warmup if not result.ok]

    @property
    def loads(self) -> bool:
        """Would TF Serving's runtime load it: LoadSavedModel succeeds, every op is registered
        with a CPU kernel, and every warmup record answers."""
        return self.loaded and not self.problems()

    def problems(self) -> List[str]:
        """What makes the version unservable, one sentence each (the ops named)."""
        found = [f"op '{op}' is not registered in TensorFlow's C++ runtime (a custom op?): "
                 "TF Serving cannot run the signatures that use it"
                 for op in self.unregistered_ops]
        found += [f"op '{op}' has no CPU kernel in TensorFlow's C++ runtime (py_function and "
                  "numpy_function run Python): TF Serving cannot run the signatures that use it"
                  for op in self.ops_without_cpu_kernel]
        if not self.loaded:
            found.append(f"LoadSavedModel failed for {self.export_dir}: {self.load_error}")
        found += [f"warmup record {index} ({result.signature}) failed: {result.error}"
                  for index, result in enumerate(self.warmup) if not result.ok]
        return found

    def summary(self) -> dict:
        """The report as JSON-ready values, without the output tensors."""
        def call(result: CallResult) -> dict:
            return {"signature": result.signature, "ok": result.ok, "error": result.error,
                    "seconds": result.seconds}
        return {
            "export_dir": self.export_dir, "loads": self.loads, "loaded": self.loaded,
            "load_error": self.load_error, "load_seconds": self.load_seconds,
            "problems": self.problems(), "unregistered_ops": list(self.unregistered_ops),
            "ops_without_cpu_kernel": list(self.ops_without_cpu_kernel),
            "signatures": [dataclasses.asdict(signature) for signature in self.signatures],
            "warmup_records": len(self.warmup), "warmup_failures": len(self.warmup_failures),
            "warmup": [call(result) for result in self.warmup],
            "calls": [call(result) for result in self.calls],
            "vm_rss_before_load_kb": self.vm_rss_before_load_kb,
            "vm_rss_kb": self.vm_rss_kb, "vm_hwm_kb": self.vm_hwm_kb,
        }


# -- build ---------------------------------------------------------------------------------

def compiler() -> str:
    """Path of the C++ compiler ($CXX, default g++); `CompilerMissingError` if there is none."""
    name = os.environ.get(CXX_ENV, "g++")
    found = shutil.which(name)
    if not found:
        raise CompilerMissingError(f"no C++ compiler '{name}' on PATH (set ${CXX_ENV}) to build "
                              f"{SOURCE}")
    return found


def build_command(output: str) -> List[str]:
    """g++ command line compiling SOURCE into `output` against the TensorFlow wheel."""
    import tensorflow as tf
    lib = tf.sysconfig.get_lib()
    # --no-as-needed: main() calls nothing in libtensorflow_cc itself, but its static
    # initialisers register the ops, kernels and the DirectSession factory.
    return [compiler(), "-O1", *tf.sysconfig.get_compile_flags(), str(SOURCE), "-o", output,
            "-Wl,--no-as-needed", *tf.sysconfig.get_link_flags(), "-l:libtensorflow_cc.so.2",
            f"-Wl,-rpath,{lib}"]


def cache_key() -> str:
    """16 hex digits of sha256(source, TensorFlow version, build command)."""
    import tensorflow as tf
    if not SOURCE.is_file():
        raise RuntimeCheckError(f"{SOURCE} is missing: the install lacks the checker's source "
                                "(package data of crossfade.serving.runtime_check)")
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(tf.__version__.encode())
    digest.update("\0".join(build_command("OUT")).encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """$CROSSFADE_CACHE_DIR, else ~/.cache/crossfade/runtime_check."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def binary() -> Path:
    """The cached checker binary, compiled first if this cache key has none (~10-90 s)."""
    target = cache_dir() / cache_key() / BINARY_NAME
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".build-", dir=target.parent)
    os.close(handle)
    try:
        built = subprocess.run(build_command(temporary), capture_output=True, text=True,
                               check=False)
        if built.returncode != 0:
            raise RuntimeCheckError(f"compiling {SOURCE} failed:\n{built.stderr[-4000:]}")
        os.chmod(temporary, 0o755)
        os.replace(temporary, target)  # atomic: concurrent builds leave one complete binary
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


# -- request / response files --------------------------------------------------------------

def _blob(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def encode_calls(calls: Sequence[Call]) -> bytes:
    """The request file: per call, the signature name and one NamedTensorProto per input."""
    from tensorflow.core.protobuf import named_tensor_pb2
    parts = []
    for signature, inputs in calls:
        parts += [_blob(signature.encode()), struct.pack("<I", len(inputs))]
        for key, value in inputs.items():
            named = named_tensor_pb2.NamedTensorProto(
                name=key, tensor=tensor_proto.from_ndarray(np.asarray(value)))
            parts.append(_blob(named.SerializeToString()))
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data, self.offset, self.path = data, 0, path

    def u32(self) -> int:
        if self.offset + 4 > len(self.data):
            raise RuntimeCheckError(f"truncated response file {self.path}")
        (value,) = struct.unpack_from("<I", self.data, self.offset)
        self.offset += 4
        return value

    def blob(self) -> bytes:
        size = self.u32()
        self.offset += size
        return self.data[self.offset - size:self.offset]


def decode_results(data: bytes, path: str) -> List[Tuple[bool, str, Dict[str, np.ndarray]]]:
    """(ok, error, {output key: ndarray}) per call of the response file at `path`."""
    import tensorflow as tf
    from tensorflow.core.protobuf import named_tensor_pb2
    reader, results = _Reader(data, path), []
    while reader.offset < len(data):
        ok, error, outputs = bool(reader.u32()), reader.blob().decode(errors="replace"), {}
        for _ in range(reader.u32()):
            named = named_tensor_pb2.NamedTensorProto.FromString(reader.blob())
            outputs[named.name] = tf.make_ndarray(named.tensor)
        results.append((ok, error, outputs))
    return results


# -- running -------------------------------------------------------------------------------

def _tensors(items: list) -> Tuple[TensorInfo, ...]:
    return tuple(TensorInfo(item["key"], item["name"], item["dtype"],
                            None if item["shape"] is None else tuple(item["shape"]))
                 for item in items)


def _report(export_dir: str, raw: dict, results: list, warmup_count: int) -> CheckReport:
    calls = [CallResult(meta["signature"], ok, error, meta["seconds"], outputs)
             for meta, (ok, error, outputs) in zip(raw["calls"], results, strict=True)]
    if not raw["loaded"]:  # nothing ran: report the warmup records as not answered
        calls = [CallResult(name, False, "not run: the model did not load", 0.0, {})
                 for name in raw["requested"]]
    return CheckReport(
        export_dir=export_dir, loaded=raw["loaded"], load_error=raw["load_error"],
        load_seconds=raw["load_seconds"], unregistered_ops=tuple(raw["unregistered_ops"]),
        ops_without_cpu_kernel=tuple(raw["ops_without_cpu_kernel"]),
        signatures=tuple(SignatureInfo(s["name"], s["method"], _tensors(s["inputs"]),
                                       _tensors(s["outputs"])) for s in raw["signatures"]),
        warmup=tuple(calls[:warmup_count]), calls=tuple(calls[warmup_count:]),
        vm_rss_before_load_kb=raw["vm_rss_before_load_kb"], vm_rss_kb=raw["vm_rss_kb"],
        vm_hwm_kb=raw["vm_hwm_kb"])


def _execute(export_dir: str, calls: Sequence[Call], timeout_s: float) -> Tuple[dict, list]:
    with tempfile.TemporaryDirectory(prefix="crossfade-runtime-check-") as folder:
        request, response = os.path.join(folder, "request"), os.path.join(folder, "response")
        Path(request).write_bytes(encode_calls(calls))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL",
                                                                     "2")}
        done = subprocess.run([str(binary()), export_dir, request, response],
                              capture_output=True, text=True, timeout=timeout_s, env=env,
                              check=False)
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeCheckError(f"{BINARY_NAME} exited with {done.returncode} on "
                                    f"{export_dir}:\n{done.stderr[-4000:]}")
        raw = json.loads(done.stdout.strip().splitlines()[-1])
        return raw, decode_results(Path(response).read_bytes(), response)


def run_check(export_dir: str, calls: Sequence[Call] = (), replay_warmup: bool = True,
              timeout_s: float = 900.0) -> CheckReport:
    """Loads `export_dir` (a version folder) in TF's C++ runtime, replays its warmup records
    (if `replay_warmup`), runs `calls`, and reports; see the module docstring.

    Raises FileNotFoundError if `export_dir` has no saved_model.pb, ValueError for a
    malformed warmup file, RuntimeCheckError if the checker cannot be built or crashes.
    """
    export_dir = os.path.abspath(export_dir)
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{export_dir}: no saved_model.pb (not a SavedModel version)")
    records = list(warmup.read_warmup_requests(export_dir)) if replay_warmup else []
    every = records + list(calls)
    raw, results = _execute(export_dir, every, timeout_s)
    raw["requested"] = [name for name, _ in every]
    return _report(export_dir, raw, results, len(records))
