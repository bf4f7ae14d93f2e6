# genseg: the two set-up steps, the main job and the tests.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
# Real datasets: ../shared/datasets when it exists (development machines, CI), else ./data
export GENSEG_DATA_DIR ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),$(abspath data))

.PHONY: setup train test lint check-data

setup:  ## create .venv and install genseg with its dependencies (torch from the local wheel cache)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev,nnunet]'

# The main job: GenSeg on Kvasir-SEG with 40 labels (a public archive, fetched when missing).
MAIN_DATA  := kvasir
MAIN_SIZE  := 256# long side of the prepared images, as in ../shared/datasets (the archive's reach 1920 px)
MAIN_JOB   ?= dataset=$(MAIN_DATA) n_labeled=40 method=genseg
TRAIN_ARGS ?=# more overrides, e.g. TRAIN_ARGS="profile=debug" for a smoke run

train:  ## the main job: fetch Kvasir-SEG unless GENSEG_DATA_DIR has it, check it, train GenSeg, print the results table
	$(BIN)/genseg data download $(MAIN_DATA) --to "$(GENSEG_DATA_DIR)" --max-size $(MAIN_SIZE)
	$(BIN)/genseg data check $(MAIN_DATA) --data-dir "$(GENSEG_DATA_DIR)"
	$(BIN)/genseg train $(MAIN_JOB) $(TRAIN_ARGS)

test:  ## the test suite (reads the real datasets from GENSEG_DATA_DIR), one worker per core
	$(BIN)/python -m pytest -q -n auto

lint:
	$(BIN)/ruff check src tests scripts

check-data:
	$(BIN)/genseg data list
