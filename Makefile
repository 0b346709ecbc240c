# Set-up, book build and tests. Every target installs what it needs first and
# reuses what is already installed and cached.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup assets browser book notebooks html student test lab clean-book

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

assets: setup
	$(PY) -m studylib assets install

# Debian's Chromium, for the test that opens the built book.
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && apt-get update -qq && apt-get install -y -qq chromium; } \
	  || { echo "make test needs Chromium on the PATH (the test that opens the built book): on macOS" \
	       "'brew install --cask chromium', on Debian or Ubuntu 'apt-get install chromium'; see the README"; exit 1; }

notebooks: assets
	$(PY) -m studylib run-all --profile standard

html: setup
	$(PY) -m studylib book

book: notebooks html

# The same book without the exercises' solutions, for a class: _build/student/_build/html.
student: notebooks
	$(PY) -m studylib book --student

test: assets browser
	$(PY) -m pytest -q

lab: assets
	$(VENV)/bin/jupyter lab notebooks/

clean-book:
	rm -rf _build book/notebooks book/_generated
