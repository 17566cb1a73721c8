# Set-up and the everyday commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint docs
setup: $(VENV)/.installed

# torch first, pinned: on the project's machines this takes the CPU build from local disk;
# an open range would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[train,dev,docs]"
	touch $@

## The main job on the embedded default model, tic-tac-toe: evaluate (400 games, half against a random
## opponent, half against minimax), warm-start with SFT on random legal moves, GRPO against a random
## opponent, evaluate after each stage. About 10 minutes on 2 cores; prints the before / after-SFT / after
## table (win/draw/loss per opponent, invalid moves) and saves runs/demo/learning_curve.png.
demo: setup
	$(BIN)/haystack-rl train configs/tic_tac_toe_demo.yml

## The test suite.
test: setup
	$(BIN)/python -m pytest -q

## Lint and type checks (run by CI).
lint: setup
	$(BIN)/ruff check haystack_rl envs tests bench examples tools
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## The docs site: build it with every warning an error, then check every internal link and anchor of the built
## pages (external links are not fetched). `$(BIN)/mkdocs serve` previews it.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python tools/check_links.py site
