# Everything from a fresh clone: `make run` (main job) and `make test` (tests) set up what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHECKPOINT ?= checkpoints/occvla-small
# Until an OccVLA checkpoint ships, the privileged expert drives the main job.
AGENT ?= $(shell test -f $(CHECKPOINT)/model.safetensors && echo occvla || echo expert)
ROUTES_ARGS ?=

.PHONY: install run test test-slow lint bench docs clean

$(STAMP): pyproject.toml scripts/install_system_deps.sh
	./scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) leaderboard/run.py --agent $(AGENT) $(if $(filter expert,$(AGENT)),--agent-config configs/agent/expert_eval.yaml,--agent-config $(CHECKPOINT)) $(ROUTES_ARGS)

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

docs: install
	$(PY) scripts/make_docs_figures.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
