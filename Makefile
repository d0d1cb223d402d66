# quickjh's two commands and their helpers. `make deploy` runs the hub on this machine's Docker;
# `make test` runs every molecule scenario (`make test SCENARIO=team` runs one). Both set up what they need first
# (venv, Docker daemon, base image; for `make test` also Chromium, for the browser check).
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: deploy test lint unit docker base-image venv browser lock

deploy: venv docker base-image
	ansible-playbook -i inventory.example playbook.yml

# Two lanes side by side (scripts/test-scenarios.sh). default builds the image the others share (data, which ends
# by removing its image, has one of its own name); remote, the other lane's first, builds its hubs on its own
# servers, and swarm, after it, reuses its server image for the workers.
SCENARIOS := "default team | remote swarm containers data"
SCENARIO ?= $(SCENARIOS)

test: venv docker base-image browser
	scripts/test-scenarios.sh $(SCENARIO)

lint: venv
	ruff check .
	ruff format --check .
	ansible-lint
	yamllint .

unit: venv  # a test that hangs prints every thread's stack after 2 minutes and ends the run after 10
	timeout 600 python -m pytest -q -o faulthandler_timeout=120 tests

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

docker:
	scripts/ensure-docker.sh

base-image: docker
	scripts/base-image.sh

# The hub image's Python packages, pinned: scripts/lock.sh resolves them again (newer releases, security fixes) for
# the role's JupyterHub version, or those given: make lock VERSIONS="6.1.1 5.5.4". Review the diff and commit it.
lock: docker base-image
	scripts/lock.sh $(VERSIONS)

# The tests' browser check drives Debian's Chromium (Playwright downloads no browser here).
# certutil (libnss3-tools) puts a test CA's root into a Chromium profile's trust.
browser:
	@command -v chromium >/dev/null && command -v certutil >/dev/null || { apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium libnss3-tools \
	  >/dev/null; }
