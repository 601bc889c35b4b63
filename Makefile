# Everything starts from Python 3.11 and make: the first target that needs it builds .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv run test browser screenshots lint typecheck cfn-lint unit schema openapi requirements bench bench-replay stress clean iam

help:
	@echo "make run    - serve the governor on moto (http://127.0.0.1:8765), replay the sample events, keep serving"
	@echo "make test   - lint, type-check, cfn-lint the translated template, run the whole suite"
	@echo "make bench  - benchmarks and issue 12's goals with same-run baselines (engine, cold imports, requests, local stack, simulation, cost, replay flatness)"
	@echo "make stress - 64 concurrent deciders (threads and processes) over 1,000 events, then an audit"
	@echo "make bench-replay - replay 20,000 generated events through the local stack; first vs last 2,000 rate"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python infra/pins.py --all > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt
	# The project itself, editable: .venv/bin/governor is its [project.scripts] entry point.
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Serves the whole governor on moto, replays the sample (decided as of each event's own time), keeps serving.
run: $(STAMP)
	$(BIN)/governor local --clock event $(ARGS)

# The three checks side by side (one process each), then the suite on two cores (browser tests
# included: Chromium is installed first).
test: $(STAMP) browser
	$(MAKE) --no-print-directory --output-sync=target -j3 lint typecheck cfn-lint
	$(MAKE) --no-print-directory unit

# The console's browser tests drive Debian's Chromium: Playwright's own browser download does not
# work offline. Installed here when it can be (root on Debian/Ubuntu), otherwise the command to run.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "$(CHROMIUM) is missing: run  sudo apt-get install -y chromium" >&2; exit 1; \
		fi; \
	fi

# PNGs of the console on the replayed sample at 1280x800, shown in the README (docs/screenshots/).
screenshots: $(STAMP) browser
	$(BIN)/python -m tests.browser.screenshots

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Incremental: mypy keeps its cache in .mypy_cache, so a second run checks only what changed.
typecheck: $(STAMP)
	$(BIN)/mypy

# One cfn-lint process for the SAM file and its translation: its rules and schemas load once.
cfn-lint: $(STAMP)
	$(BIN)/python -m infra.template --translated > $(VENV)/translated-template.json
	$(BIN)/cfn-lint template.yaml $(VENV)/translated-template.json

# pytest-xdist workers, each test file on one worker (its module fixtures, such as a local stack,
# start once); tests/iam_plugin.py holds the union of the workers' AWS calls to infra/iam-usage.json.
TEST_WORKERS ?= 2
unit: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

schema: $(STAMP)
	$(BIN)/python -m infra.schema > infra/interaction-closed.schema.json
	$(BIN)/python -m infra.schema followup-outcome > infra/followup-outcome.schema.json

openapi: $(STAMP)
	$(BIN)/python -m infra.openapi

# Runs the whole suite recording each function's AWS calls, and writes them to infra/iam-usage.json
# (tests/test_template.py then checks each role grants exactly those). Needs every product test passing.
iam: $(STAMP)
	GOVERNOR_IAM_USAGE=write $(BIN)/pytest

requirements: $(STAMP)
	$(BIN)/python infra/pins.py > requirements.txt

# 64 deciders (32 threads + 4 processes x 8 threads) over 1,000 events of hot customers.
stress: $(STAMP)
	STRESS_EVENTS=1000 STRESS_THREADS=32 STRESS_PROCESSES=4 STRESS_THREADS_PER_PROCESS=8 \
		$(BIN)/pytest --timeout 1800 tests/proof/test_concurrency_stress.py

# Every part at the sizes bench/run.py chose (printed first; ~15-20 minutes on 2 cores). Smaller or
# skipped parts: make bench ARGS="--skip-replay --cost-events 500" (python -m bench.run --help).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

# `governor replay --in-process` of 20,000 generated events: decided events/s over the first and the
# last 2,000 (flat = the emulator's per-request cost does not grow with its tables and queues).
bench-replay: $(STAMP)
	$(BIN)/python -m bench.replay --events 20000 --window 2000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
