# fraudkit: `make demo` and `make test` are all the set-up a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
FK     := $(VENV)/bin/fraudkit
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Where `make demo` writes; all ignored by git.
DEMO_BATCH  ?= data/demo
DEMO_OUT    ?= out/demo
DEMO_CLAIMS ?= 200000

.PHONY: install demo test chromium model bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

install: $(STAMP)

# Headless Chromium for the report test, from Debian's packages.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  ( $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null )

test: install chromium
	$(PY) -m pytest -q

demo: install
	$(FK) generate --scenario synthetic/default.yaml --claims $(DEMO_CLAIMS) --seed 7 --out $(DEMO_BATCH)
	$(FK) validate $(DEMO_BATCH)

clean:
	rm -rf data out mlruns mlruns.db .pytest_cache .hypothesis
