# The README's two commands: `make lab` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: lab test unit notebooks lint bench regen-notebooks check-notebooks docs tour-images clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,lab]'
	@# pyscard (extra 'pcsc') builds from source: only where swig and the PC/SC headers exist
	@# (.ci/run installs them). Without it the PC/SC tests skip and say why.
	@if command -v swig >/dev/null 2>&1 && [ -f /usr/include/PCSC/winscard.h ]; then \
		$(BIN)/pip install --quiet -c constraints.txt -e '.[pcsc]'; \
	else \
		echo "note: swig or libpcsclite-dev missing; pyscard not installed, PC/SC tests will skip"; \
	fi
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jpki-workbench lab notebooks $(LAB_ARGS)

test: $(STAMP) lint check-notebooks unit notebooks

unit: $(STAMP)
	$(PYTEST) tests -q

# The notebooks run as copies in a folder outside the checkout: a notebook must work wherever a
# user puts it (shipped data comes through importlib.resources, never ../data).
notebooks: $(STAMP)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp notebooks/*.ipynb notebooks/nbval_sanitize.cfg "$$tmp"/; \
	cd "$$tmp" && $(abspath $(BIN))/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with nbval_sanitize.cfg --nbval-cell-timeout=300 \
		-p no:python -p no:cacheprovider . -q

check-notebooks: $(STAMP)
	$(BIN)/nbstripout --keep-output --keep-count --verify notebooks/*.ipynb

lint: $(STAMP)
	$(BIN)/ruff check workbench tests benchmarks tools

bench: $(STAMP)
	$(BIN)/python benchmarks/card_throughput.py
	$(BIN)/python benchmarks/pcsc_roundtrip.py

# Regenerate the generated pages of docs/ (the card's file tables).
docs: $(STAMP)
	$(BIN)/python tools/make_docs.py

# The README's tour images: a timing plot and a screenshot of the stepper in JupyterLab
# (Chromium via the browser test).
tour-images: $(STAMP)
	$(BIN)/python tools/make_tour_images.py
	JPKI_WORKBENCH_TOUR_DIR=$(abspath docs/images) $(PYTEST) tests/test_browser.py -q -k stepper

# Re-execute the notebooks and store their outputs (deterministic: seeded, fixed clock).
regen-notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb
	$(BIN)/nbstripout --keep-output --keep-count notebooks/*.ipynb
	$(BIN)/python tools/normalize_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) build *.egg-info
