# mmconvert: `make demo` and `make test` install what they need first.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
APT_PKGS := coccinelle flex bison bc libelf-dev libssl-dev perl git libc6-dev
# verify --boot: qemu without its recommends (no GUI, no firmware extras).
APT_BARE := qemu-system-x86
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=

.PHONY: setup apt venv demo test unit lint bench kernels clean

setup: apt venv

# Debian packages: only call apt-get when one is missing, so a ready machine
# pays nothing.
apt:
	@missing=$$(for p in $(APT_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "setup: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@missing=$$(for p in $(APT_BARE); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "setup: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	@$(BIN)/python -m mmconvert.demo $(DEMO_OUT)

# The whole suite, real kernel trees included (fetched and cached by
# scripts/get-kernel on first use).
test: setup lint
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# ruff with the rules pyproject.toml selects, and mypy (strict on the stage
# interfaces: model, pipeline, errors).
lint: setup
	$(BIN)/ruff check mmconvert tests
	$(BIN)/mypy

# Only the fast tests on the sample tree and fixtures.
unit: setup
	$(BIN)/python -m pytest -ra -m 'not realtree' $(PYTEST_ARGS)

kernels:
	scripts/get-kernel 7.3
	scripts/get-kernel 6.12

bench: setup kernels
	$(BIN)/python -m mmconvert.bench

clean:
	rm -rf out build .pytest_cache
