# Everything starts from Python 3.11 and make: the first target that needs it builds .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv run test lint typecheck cfn-lint unit schema requirements bench stress clean

help:
	@echo "make run    - replay the sample events through EventBridge, SQS and the decide function on moto"
	@echo "make test   - lint, type-check, cfn-lint the translated template, run the whole suite"
	@echo "make bench  - benchmarks (engine speed, AWS requests per event)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python infra/pins.py --all > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m infra.local_run

test: lint typecheck cfn-lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m infra.template --translated > $(VENV)/translated-template.json
	$(BIN)/cfn-lint $(VENV)/translated-template.json

unit: $(STAMP)
	$(BIN)/pytest

schema: $(STAMP)
	$(BIN)/python -m infra.schema > infra/interaction-closed.schema.json

requirements: $(STAMP)
	$(BIN)/python infra/pins.py > requirements.txt

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
