# The two commands a newcomer needs: `make up` (run Souk) and `make test` (run every check).
# Both create a virtual environment in .venv on first use; nothing is installed globally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := chassis contracts services/catalog services/inventory services/orders services/billing \
	services/notifications services/order-history services/identity \
	simulators/payment-provider edge/gateway edge/bff-web cli \
	edge/bff-mobile mesh console
STAMP := $(VENV)/.souk-installed
# Installing contracts generates the gRPC stubs: a changed .proto means installing again.
PROTOS := $(shell find contracts/src -name '*.proto')

.PHONY: up test lint install clean image

up: $(STAMP)
	$(BIN)/souk up

test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

install: $(STAMP)

$(STAMP): requirements/dev.txt requirements/constraints.txt $(addsuffix /pyproject.toml,$(PACKAGES)) \
		$(PROTOS) contracts/hatch_build.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Souk needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt \
		-r requirements/dev.txt $(addprefix -e ,$(PACKAGES))
	@# xds-protos (the mesh's Envoy API) ships an old copy of opentelemetry-proto's modules
	@# (no ScopeSpans) into the same folder; whichever installs last wins. Put the pinned
	@# opentelemetry-proto back on top, or OTLP export and the console break.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
		-c requirements/constraints.txt opentelemetry-proto
	@touch $@

# One image for every unit (ADR 0021), reproducible layers; needs podman (or docker) and a
# registry with the base image: neither works on Souk's CI machines (tests/deploy checks the
# Containerfile's rules instead).
IMAGE ?= souk:0.1.0
image:
	podman build --timestamp 0 -f deploy/images/Containerfile -t $(IMAGE) .

clean:
	rm -rf $(VENV) .souk .pytest_cache .ruff_cache .mypy_cache
