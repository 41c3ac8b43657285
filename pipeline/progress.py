"""Readable progress for pipeline runs: one line per component start and finish, with timings.

TFX runners log "Component X is running." / "Component X is finished." at INFO level among
thousands of lines from TensorFlow and Beam. While active, `ComponentProgress` takes over the
loggers of TFX (absl), TensorFlow and Beam: component events become progress lines, errors are
printed, and the rest is dropped unless `verbose`. It also records each component's wall time
and this process's peak resident memory while it ran (pipeline/peak_memory.py; used by the run
summary and the benchmark).
"""
import logging
import re
import sys
import time
from typing import Dict, Optional, TextIO

from absl import logging as absl_logging

from crossfade.pipeline import peak_memory

# LocalDagRunner says "Component X is running."; BeamDagRunner says "node X is running.".
_COMPONENT_EVENT = re.compile(r"(?:Component|node) (\S+) is (running|finished)\.")
_LOGGERS = ("absl", "tensorflow", "apache_beam")


class ComponentProgress(logging.Handler):
    """Prints component progress to `stream` and collects `seconds` and `peak_bytes` (None
    where not measurable) per component."""

    def __init__(self, stream: TextIO = sys.stderr, verbose: bool = False):
        super().__init__(level=logging.DEBUG)
        self.stream = stream
        self.verbose = verbose
        self.seconds: Dict[str, float] = {}
        self.peak_bytes: Dict[str, Optional[int]] = {}
        self._started: Dict[str, float] = {}
        self._peak_reset = False
        self._saved = {}
        self.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        match = _COMPONENT_EVENT.search(record.getMessage())
        if match:
            self._component_event(*match.groups())
        elif self.verbose or record.levelno >= logging.ERROR:
            print(self.format(record), file=self.stream, flush=True)

    def _component_event(self, component: str, event: str) -> None:
        now = time.perf_counter()
        if event == "running":
            self._started[component] = now
            self._peak_reset = peak_memory.reset()
            print(f"-> {component} ...", file=self.stream, flush=True)
        else:
            seconds = now - self._started.get(component, now)
            self.seconds[component] = seconds
            # Without a reset the kernel's figure is the whole process's peak so far.
            self.peak_bytes[component] = (peak_memory.peak_bytes()
                                          if self._peak_reset else None)
            print(f"   {component} done in {seconds:.1f} s", file=self.stream, flush=True)

    def __enter__(self) -> "ComponentProgress":
        # absl derives its logger's level from its verbosity flag whenever flags are parsed
        # (TFX components do), so the flag, not just the logger, must say INFO.
        self._saved_verbosity = absl_logging.get_verbosity()
        absl_logging.set_verbosity(absl_logging.INFO)
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            self._saved[name] = (logger.level, logger.propagate, list(logger.handlers))
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.addHandler(self)
            logger.propagate = False
            # INFO, explicitly: libraries reset the root logger's level during a run.
            logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc_info) -> None:
        for name, (level, propagate, handlers) in self._saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            for handler in handlers:
                logger.addHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)
        absl_logging.set_verbosity(self._saved_verbosity)
