# Everything from a fresh clone: `make run` (main job) and `make test` (tests) set up what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHECKPOINT ?= checkpoints/occvla-small
# Until an OccVLA checkpoint ships, the privileged expert drives the main job.
AGENT ?= $(shell test -f $(CHECKPOINT)/model.safetensors && echo occvla || echo expert)
ROUTES_ARGS ?=
# Routes in parallel (Ray), one simulator + one torch thread each: the 2-core machine's two cores.
RUN_WORKERS ?= 2

.PHONY: install run test test-slow lint bench docs clean train-small nuscenes-venv

$(STAMP): pyproject.toml scripts/install_system_deps.sh
	./scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) leaderboard/run.py --agent $(AGENT) $(if $(filter expert,$(AGENT)),--agent-config configs/agent/expert_eval.yaml,--agent-config $(CHECKPOINT)) --workers $(RUN_WORKERS) $(ROUTES_ARGS)

# The shipped checkpoint from nothing: collect (generated towns), stages 0..3, export to $(CHECKPOINT). Resumable:
# rerun after a kill. TRAIN_ARGS e.g. "--work DIR" or "model=tiny".
train-small: install
	$(PY) scripts/train_small.py $(TRAIN_ARGS)

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(PY) -m ruff check agent occvla scenarios sim leaderboard tests benchmarks

bench: install
	$(PY) benchmarks/sim_step.py
	$(PY) benchmarks/expert_step.py
	$(PY) benchmarks/model_latency.py --preset small
	$(PY) benchmarks/train_step.py --preset small
	$(PY) benchmarks/closed_loop.py

docs: install
	$(PY) scripts/make_docs_figures.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# nuscenes-devkit 1.2 needs numpy<2: it gets its own venv, used by tests/agent/test_collector.py and
# scripts/nuscenes_check.py (never by the project's code).
NUSC_VENV ?= .venv-nuscenes
nuscenes-venv: $(NUSC_VENV)/.installed
$(NUSC_VENV)/.installed:
	test -x $(NUSC_VENV)/bin/python || $(PYTHON) -m venv $(NUSC_VENV)
	$(NUSC_VENV)/bin/python -m pip install -q nuscenes-devkit==1.2.0 matplotlib
	touch $@
