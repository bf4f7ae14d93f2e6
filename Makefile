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
	$(BIN)/pip install --quiet -e '.[dev]'

train:  ## the main job: baseline UNet on JSRT with 9 labels, test + OOD (NLM-MC, NLM-SZ) Dice
	$(BIN)/genseg train dataset=jsrt backbone=unet n_labeled=9 method=baseline

test:  ## the test suite (reads the real datasets from GENSEG_DATA_DIR), one worker per core
	$(BIN)/python -m pytest -q -n auto

lint:
	$(BIN)/ruff check src tests scripts

check-data:
	$(BIN)/genseg data list
