# Link <-> Zoom: every entry point a developer or CI needs. `make run` and `make test` are the two that matter.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
PYTEST := $(PYTHON) -m pytest
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := $(CURDIR)/layers/shared:$(CURDIR)

# sam build needs a working python3.12 (the Lambda runtime): pyenv's 3.12 when present, else one on PATH.
PY312_DIR := $(shell (pyenv prefix 3.12.1 2>/dev/null || pyenv prefix 3.12 2>/dev/null) | head -1)
SAM_PATH := $(if $(PY312_DIR),$(PY312_DIR)/bin:,)$(PATH)

.PHONY: help setup system-packages run-packages venv tools lint typecheck validate build test test-unit test-integration \
        test-e2e run keeper replay-dlq bench resilience clean

help:
	@echo "make run        - the whole service on this machine (API on http://127.0.0.1:3000)"
	@echo "make test       - lint, types, template checks, sam build, unit, integration and e2e tests"
	@echo "make bench      - import costs, call counts, stream batch speed-up -> docs/benchmarks.md (ONLY=text: those sections)"
	@echo "make keeper     - run the token keeper once against the running local stack"
	@echo "make replay-dlq - replay the calendar stream's dead-letter queue on the running local stack"

setup: system-packages venv

# Debian packages: python3-venv (the venv), a Samba AD DC for the demo directory (not needed when LDAP_URL names
# a real one), Chromium for the browser tests. `make run` and `make test` check theirs first (dpkg -s, cheap) and
# install what is missing, or, when not root, stop at once with the one command that installs it.
DIRECTORY_PACKAGES := $(if $(LDAP_URL),,samba-ad-dc samba winbind krb5-user ldap-utils)
RUN_PACKAGES := python3-venv $(DIRECTORY_PACKAGES)
TEST_PACKAGES := python3-venv samba-ad-dc samba winbind krb5-user ldap-utils chromium

define ensure_packages
	@missing=""; \
	for pkg in $(1); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "missing Debian packages:$$missing. Install them with:" >&2; \
	    echo "  sudo apt-get install -y$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; \
	fi
endef

system-packages:
	$(call ensure_packages,$(TEST_PACKAGES))

run-packages:
	$(call ensure_packages,$(RUN_PACKAGES))

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements-dev.txt
	touch $@

# The scanners live in a venv of their own: checkov pins boto3/botocore/packaging older than the service's venv
# needs (installing it there would downgrade them under moto and the tests).
TOOLS := .venv-tools

tools: $(TOOLS)/.installed

$(TOOLS)/.installed: requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q -r requirements-tools.txt
	touch $@

lint: venv tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# the wiring rule (pyproject.toml [tool.importlinter]): handlers -> composition -> adapters | edge -> domain
	$(BIN)/lint-imports --no-cache
	@# every CloudFormation check; a finding is fixed or skipped in the template's Metadata with its reason
	$(TOOLS)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download
	@# medium severity and confidence and up; a finding is fixed or marked `# nosec BXXX  # reason` in place
	$(TOOLS)/bin/bandit -q -r layers functions devstack scripts --severity-level medium --confidence-level medium

typecheck: venv
	$(BIN)/mypy
	@# every handler is functions/<name>/app.py: check each on its own (one module name per run)
	@for f in functions/*/app.py; do $(BIN)/mypy --no-error-summary "$$f" || exit 1; done

validate: venv
	PATH="$(SAM_PATH)" $(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml

build: venv
	@PATH="$(SAM_PATH)" python3.12 --version >/dev/null 2>&1 || { echo "sam build needs python3.12 (pyenv 3.12.x or on PATH)"; exit 1; }
	PATH="$(SAM_PATH)" $(BIN)/sam build --parallel

test-unit: venv
	$(PYTEST) tests/unit -q

test-integration: venv
	$(PYTEST) tests/integration -q

test-e2e: venv
	$(PYTEST) tests/e2e -q

# system-packages first: on a bare machine the venv needs python3-venv and the tests need Samba and Chromium.
test: system-packages lint typecheck validate build
	$(PYTEST) tests -q

run: run-packages venv
	$(PYTHON) -m devstack.run

keeper: venv
	$(PYTHON) -m devstack.run invoke TokenKeeperFunction

replay-dlq: venv
	$(PYTHON) scripts/replay_dlq.py

bench: venv
	$(PYTHON) -m devstack.bench $(if $(ONLY),--only "$(ONLY)",)

resilience: venv
	$(PYTEST) tests/resilience -q

clean:
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache
