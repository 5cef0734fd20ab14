# RL4DA — run `make` (or `make help`) for the list of targets.
SHELL := /bin/bash
PY ?= .venv/bin/python
CONFIG ?= configs/L96_1.py
CONFIGS ?= configs/L96_1.py configs/L96_2.py configs/L96_3.py
ARGS ?=
CHECKPOINT ?= $(wildcard pretrained/$(basename $(notdir $(CONFIG))).pt)
TRIALS ?= 20
LOGS := $(or $(RL4DA_LOGS),logs)
PORT ?= 6006
HOST ?= 127.0.0.1
MINUTES ?= 30
SEED ?= 1
TEST_WORKERS ?= 2
NENS ?= 5,10,20,40

.DEFAULT_GOAL := help
.PHONY: help install data data-all sweep tune-filters train train-all status stop eval eval-all eval-path0 tune tensorboard tensorboard-bg \
	test lint format bench-data bench-env bench-learning bench-speed bench-ablate clean clear reset restart_training end_training \
	visualize

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

train-all: install ## train every config of CONFIGS in parallel (ARGS: flags; BACKGROUND=1 detaches)
	PY=$(PY) scripts/train_concurrent.sh $(if $(BACKGROUND),--background) $(CONFIGS) -- $(ARGS)

status: ## which trainings run (PID files), their last progress line, exit codes; TensorBoard
	@PY=$(PY) scripts/train_concurrent.sh --status
	@if [ -f $(LOGS)/tensorboard.pid ] && kill -0 $$(cat $(LOGS)/tensorboard.pid) 2>/dev/null; then \
		echo "tensorboard    running (pid $$(cat $(LOGS)/tensorboard.pid)), see $(LOGS)/tensorboard.log"; fi

stop: ## SIGTERM every training (each checkpoints, then exits) and the background TensorBoard
	@PY=$(PY) scripts/train_concurrent.sh --stop
	@if [ -f $(LOGS)/tensorboard.pid ]; then kill $$(cat $(LOGS)/tensorboard.pid) 2>/dev/null && echo "tensorboard stopped"; \
		rm -f $(LOGS)/tensorboard.pid; fi

eval: install ## benchmark suite on held-out data: filters + agent CHECKPOINT (default pretrained/<config>.pt)
	$(PY) scripts/evaluate.py --config $(CONFIG) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) $(ARGS)

eval-all: install ## every shipped agent (seed mean) vs the best filter (tuned or adaptive RTPS) on its held-out set: docs/eval_all.md
	$(PY) scripts/eval_all.py --jobs 2 $(ARGS)

eval-path0: install ## evaluate CHECKPOINT on held-out path 0 only (plots + summary beside the run)
	@test -n "$(CHECKPOINT)" || { echo "usage: make eval-path0 CHECKPOINT=logs/<config>/runs/<run>/checkpoints/best.pt"; exit 2; }
	$(PY) ppo_lstm_enkf.py --config $(CONFIG) --eval-only --checkpoint $(CHECKPOINT) $(ARGS)

tune-filters: install ## tune EAKF/ETKF/LETKF/PertObs spread controls for CONFIG at NENS, write configs/tuned/<config>.json
	$(PY) -m enkf.tuned --config $(CONFIG) --n-ens $(NENS) $(ARGS)

tune: install ## Optuna search on CONFIG: TRIALS trials (ARGS: --minutes, --storage, --study-name, --timeout)
	$(PY) scripts/tune.py --config $(CONFIG) --n-trials $(TRIALS) $(ARGS)

tensorboard: install ## serve logs/ in TensorBoard (PORT, HOST)
	$(PY) -m tensorboard.main --logdir $(LOGS) --port $(PORT) --host $(HOST)

tensorboard-bg: install ## TensorBoard in the background (PID in logs/tensorboard.pid; `make stop` ends it)
	@mkdir -p $(LOGS)
	@if [ -f $(LOGS)/tensorboard.pid ] && kill -0 $$(cat $(LOGS)/tensorboard.pid) 2>/dev/null; then \
		echo "tensorboard already running (pid $$(cat $(LOGS)/tensorboard.pid))"; else \
		nohup $(PY) -m tensorboard.main --logdir $(LOGS) --port $(PORT) --host $(HOST) > $(LOGS)/tensorboard.log 2>&1 & \
		echo $$! > $(LOGS)/tensorboard.pid; echo "tensorboard on http://$(HOST):$(PORT) (pid $$!)"; fi

test: install ## run the test suite (TEST_WORKERS=2 pytest-xdist workers; TEST_WORKERS=0: one process)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal tests

lint: install ## ruff check + format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install ## ruff format + autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench-data: install ## time a full data generation for CONFIG, phase by phase (ARGS="--threads 1": one core)
	$(PY) bench/data_generation.py --config $(CONFIG) $(ARGS)

bench-env: install ## environment throughput vs a naive per-member loop (prints figures)
	$(PY) bench/env_throughput.py --config $(CONFIG)

bench-learning: install ## train CONFIG for MINUTES on one core, evaluate on path 0 (prints figures)
	$(PY) bench/learning.py --config $(CONFIG) --minutes $(MINUTES) --seed $(SEED)

bench-speed: install ## seconds per training iteration (rollout, env, update) of flag variants side by side (ARGS='-- "--no-rollout-pool" ""')
	$(PY) bench/training_speed.py --config $(CONFIG) $(ARGS)

bench-ablate: install ## one-factor ablations on CONFIG, MINUTES per run (default 4 here), 2 seeds, 2 workers
	$(PY) bench/ablate.py --config $(CONFIG) --minutes $(if $(filter command line,$(origin MINUTES)),$(MINUTES),4) --seeds 1 2 --workers 2 $(ARGS)

visualize: install ## plots + summary of the newest run of each config in CONFIGS (its best, else latest, checkpoint)
	@for c in $(CONFIGS); do n=$$(basename $$c .py); \
		ck=$$(ls -t $(LOGS)/$$n/runs/*/checkpoints/best.pt 2>/dev/null | head -n 1); \
		[ -n "$$ck" ] || ck=$$(ls -t $(LOGS)/$$n/runs/*/checkpoints/latest.pt 2>/dev/null | head -n 1); \
		if [ -z "$$ck" ]; then echo "$$n: no run with a checkpoint"; continue; fi; \
		echo "$$n: $$ck"; $(PY) ppo_lstm_enkf.py --config $$c --eval-only --checkpoint $$ck | tail -n 1; done

# the user's previous target names
clear: ## remove training runs, training logs and PID files (keeps data)
	rm -rf $(LOGS)/*/runs $(LOGS)/*/train.log $(LOGS)/*/train.pid $(LOGS)/*/train.exit $(LOGS)/train_all.log

restart_training: ## clear, then train-all and TensorBoard in the background
	$(MAKE) stop
	$(MAKE) clear
	$(MAKE) train-all BACKGROUND=1
	$(MAKE) tensorboard-bg

end_training: stop ## = stop

clean: ## remove caches (keeps logs/)
	find . -name __pycache__ -prune -exec rm -rf {} + ; rm -rf .pytest_cache .ruff_cache

reset: clean ## remove everything generated: logs/ (data, runs) — configs are kept
	rm -rf $(LOGS)
