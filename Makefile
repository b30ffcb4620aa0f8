# fraudkit: `make demo` and `make test` are all the set-up a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
FK     := $(VENV)/bin/fraudkit
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Where `make demo` writes; all ignored by git.
DEMO_TRAIN  ?= data/demo-train
DEMO_BATCH  ?= data/demo
DEMO_MODEL  ?= out/demo-model
DEMO_OUT    ?= out/demo
DEMO_CLAIMS ?= 200000

.PHONY: install demo test chromium model model-check bench quality clean

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

# Train on one synthetic month, score a fresh one (a different seed) with that model as trained
# (--refit never: a batch this large would otherwise be its own reference), write the report.
demo: install
	$(FK) generate --scenario synthetic/default.yaml --claims $(DEMO_CLAIMS) --seed 7 --out $(DEMO_TRAIN)
	$(FK) generate --scenario synthetic/default.yaml --claims $(DEMO_CLAIMS) --seed 8 --out $(DEMO_BATCH)
	$(FK) train $(DEMO_TRAIN) --config models/config.yaml --out $(DEMO_MODEL)
	$(FK) score $(DEMO_BATCH) --model $(DEMO_MODEL) --out $(DEMO_OUT) --inspections 20 --refit never
	$(FK) evaluate $(DEMO_BATCH) --scores $(DEMO_OUT)
	@echo
	@echo "Training batch:   $(DEMO_TRAIN)"
	@echo "Scored batch:     $(DEMO_BATCH)"
	@echo "Model:            $(DEMO_MODEL)   (also logged to MLflow: sqlite:///mlruns.db)"
	@echo "Ranked providers: $(DEMO_OUT)/providers.csv"
	@echo "Scored claims:    $(DEMO_OUT)/claims.parquet"
	@echo "Report:           $(DEMO_OUT)/report.html"
	@echo "MLflow UI:        $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns.db   (then open http://127.0.0.1:5000)"

# The default model shipped in models/default (see models/README.md); byte-for-byte reproducible.
model: install
	$(FK) generate --scenario synthetic/default.yaml --claims 200000 --seed 11 --out data/model/train
	$(FK) generate --scenario synthetic/default.yaml --claims 100000 --seed 12 --out data/model/eval
	$(FK) train data/model/train --config models/config.yaml --eval-batch data/model/eval \
	    --scenario synthetic/default.yaml --no-track --out models/default
	sha256sum models/default/model.joblib models/default/manifest.json > models/MANIFEST
	@echo "Rebuilt models/default; check with: sha256sum -c models/MANIFEST"

# Rebuild the default model and fail if the committed bytes changed.
model-check: model
	git diff --exit-code models/MANIFEST models/default

# Speed and memory per stage against baselines measured in the same run (writes benchmarks/results.md).
bench: install
	$(PY) benchmarks/run.py

# Detection quality of the pipeline and of each detector family on planted fraud.
quality: install
	$(PY) benchmarks/quality.py

clean:
	rm -rf data out mlruns mlruns.db .pytest_cache .hypothesis
