# crossfade: `make run` and `make test` set everything up on a fresh machine.
PYTHON_VERSION := $(shell cat .python-version)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::FutureWarning

.PHONY: run test bench clean-outputs

# The environment is rebuilt when the pins or the package metadata change.
$(STAMP): requirements.txt constraints.lock.txt setup.py pyproject.toml .python-version
	@command -v pyenv >/dev/null && ! PYENV_VERSION=$(PYTHON_VERSION) pyenv exec python -V >/dev/null 2>&1 \
	  && pyenv install $(PYTHON_VERSION) || true
	@test -x $(PY) || PYENV_VERSION=$(PYTHON_VERSION) python3 -m venv $(VENV) \
	  || python$(PYTHON_VERSION) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == tuple(map(int, "$(PYTHON_VERSION)".split("."))), sys.version' \
	  || (echo "$(VENV) is not Python $(PYTHON_VERSION): remove it and retry" >&2; exit 1)
	$(PY) -m pip install --quiet --upgrade "pip<25" "setuptools<75" wheel
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/crossfade run

# Lint first (rules and their reasons: pyproject.toml), then every test.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench.pipeline_bench

clean-outputs:
	rm -rf outputs
