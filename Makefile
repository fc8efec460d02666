# Every target builds the virtual environment it needs from the pinned requirements.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

LAMBDA_ARCH ?= arm64
LAMBDA_PYTHON ?= 3.12

.PHONY: help venv lint typecheck test unit demo reliability package cfn-lint bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt provider/requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(STAMP) ## create .venv from the pinned requirements (when missing or stale)

$(CHECKOV_STAMP): requirements-checkov.txt
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict on provider/ and sandbox/
	$(BIN)/mypy

test: lint typecheck $(CHECKOV_STAMP) ## lint, type-check and run every test with branch coverage of provider/
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(BIN)/pytest --cov --cov-report=term

demo: $(STAMP) ## deploy, update and delete the connector stack in the local sandbox
	$(BIN)/python -m sandbox demo

reliability: $(STAMP) ## the fault matrix: every operation under every fault, judged
	$(BIN)/python -m sandbox reliability

unit: $(STAMP) ## the unit tests only (fast)
	$(BIN)/pytest tests/unit -q

package: $(STAMP) ## build the Lambda zip and the CfCT configuration package into dist/
	rm -f dist/qualys-connector-provider-*.zip dist/custom-control-tower-configuration.zip
	$(BIN)/python scripts/build_lambda.py --arch $(LAMBDA_ARCH) --python $(LAMBDA_PYTHON) --out dist
	$(BIN)/python scripts/build_cfct_package.py --out dist

cfn-lint: $(STAMP) ## lint the CloudFormation templates (config in .cfnlintrc.yaml)
	$(BIN)/cfn-lint

bench: $(STAMP) ## print cold-start, XML and lifecycle timings, and the Lambda zip size
	$(BIN)/python -m bench

clean: ## remove the virtual environments and build output
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage
