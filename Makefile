# RL4DA — run `make` (or `make help`) for the list of targets.
SHELL := /bin/bash
PY ?= .venv/bin/python
CONFIG ?= configs/L96_1.py
CONFIGS ?= configs/L96_1.py configs/L96_2.py configs/L96_3.py
ARGS ?=
CHECKPOINT ?=
PORT ?= 6006
HOST ?= 127.0.0.1
MINUTES ?= 30
SEED ?= 1

.DEFAULT_GOAL := help
.PHONY: help install data data-all sweep train eval tensorboard test lint format bench-data bench-env bench-learning clean reset

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: CONFIG=$(CONFIG)  CONFIGS=\"$(CONFIGS)\"  ARGS=\"extra flags\""

install: .venv/.installed ## create .venv and install requirements (torch==2.13.0 CPU)
.venv/.installed: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

data: install ## generate data for CONFIG (ARGS="--force" to regenerate)
	$(PY) -m enkf.data --config $(CONFIG) $(ARGS)

data-all: install ## generate data for every config in CONFIGS
	for c in $(CONFIGS); do $(PY) -m enkf.data --config $$c $(ARGS) || exit 1; done

sweep: install ## filter x inflation sweep for CONFIG (ARGS for --filters/--inflations/--cycles/--paths)
	$(PY) -m enkf.sweep --config $(CONFIG) $(ARGS)

train: install ## train an agent on CONFIG (data generated if missing; ARGS for flags)
	$(PY) ppo_lstm_enkf.py --config $(CONFIG) $(ARGS)

eval: install ## evaluate CHECKPOINT on held-out path 0 of CONFIG
	@test -n "$(CHECKPOINT)" || { echo "usage: make eval CHECKPOINT=logs/<config>/runs/<run>/checkpoints/best.pt [CONFIG=...]"; exit 2; }
	$(PY) ppo_lstm_enkf.py --config $(CONFIG) --eval-only --checkpoint $(CHECKPOINT) $(ARGS)

tensorboard: install ## serve logs/ in TensorBoard (PORT, HOST)
	$(PY) -m tensorboard.main --logdir logs --port $(PORT) --host $(HOST)

test: install ## run the test suite
	$(PY) -m pytest -q tests

lint: install ## ruff check + format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install ## ruff format + autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench-data: install ## benchmark full data generation for CONFIG (prints figures)
	$(PY) bench/data_generation.py --config $(CONFIG)

bench-env: install ## environment throughput vs a naive per-member loop (prints figures)
	$(PY) bench/env_throughput.py --config $(CONFIG)

bench-learning: install ## train CONFIG for MINUTES on one core, evaluate on path 0 (prints figures)
	$(PY) bench/learning.py --config $(CONFIG) --minutes $(MINUTES) --seed $(SEED)

clean: ## remove caches (keeps logs/)
	find . -name __pycache__ -prune -exec rm -rf {} + ; rm -rf .pytest_cache .ruff_cache

reset: clean ## remove everything generated: logs/ (data, runs) — configs are kept
	rm -rf logs
