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

# The CfCT configuration in use: your own folder (manifest.yaml, parameters/), or the example.
# make test checks it; make package builds it, merged into CFCT_MERGE_INTO when given (the
# organisation's current custom-control-tower-configuration.zip, or its folder).
CFCT_CONFIG ?= stackset
CFCT_MERGE_INTO ?=
export CFCT_CONFIG

.PHONY: help venv lint typecheck test unit demo demo-org demo-audit reliability check-config package cfn-lint bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

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

demo-org: $(STAMP) ## the central provider and a StackSet of member stacks in five accounts
	$(BIN)/python -m sandbox demo-org

demo-audit: $(STAMP) ## the fleet audit's six classes in the sandbox, then the clean-up of the orphan
	$(BIN)/python -m sandbox audit

reliability: $(STAMP) ## the fault matrix: every operation under every fault, judged
	$(BIN)/python -m sandbox reliability

unit: $(STAMP) ## the unit tests only (fast)
	$(BIN)/pytest tests/unit -q

check-config: $(STAMP) ## check the CfCT configuration in CFCT_CONFIG as CfCT and CloudFormation will
	$(BIN)/python -m scripts.cfct_config --config $(CFCT_CONFIG)

package: check-config ## build the Lambda zip and the CfCT configuration package into dist/
	rm -f dist/qualys-connector-provider-*.zip dist/custom-control-tower-configuration.zip
	$(BIN)/python scripts/build_lambda.py --arch $(LAMBDA_ARCH) --python $(LAMBDA_PYTHON) --out dist
	$(BIN)/python scripts/build_cfct_package.py --out dist --config $(CFCT_CONFIG) \
		$(if $(CFCT_MERGE_INTO),--merge-into $(CFCT_MERGE_INTO))

cfn-lint: $(STAMP) ## lint the CloudFormation templates (config in .cfnlintrc.yaml)
	$(BIN)/cfn-lint

bench: $(STAMP) ## timings, zip size, the per-account and central bursts, the fleet audit (about 20 min)
	$(BIN)/python -m bench

clean: ## remove the virtual environments and build output
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage
