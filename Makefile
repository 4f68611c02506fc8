# The only set-up a fresh machine needs: `make book` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup book pdf gpu cache-prune cache-status student-book test test-fast lint bench lab fingerprint browser clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the lock (make lock): every extra of pyproject.toml, pinned; torch==2.13.0 is the
	# CPU build wherever pip's configuration finds one (find-links, an extra index)
	$(PY) -m pip install --quiet -r requirements.txt
	# the two packages of lib/ (lora_clusters, lora_book), editable, their dependencies locked above
	$(PY) -m pip install --quiet --no-deps -e .
	# the display name the chapters' headers carry: JupyterLab writes the running kernel's
	# spec into a chapter when it saves it, and the execution cache keys on the kernelspec
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	# MathJax, RequireJS, the widget manager and reveal.js, served by the site itself (see lib/lora_book/assets.py)
	$(PY) -m lora_book.assets
	# the offline models and texts of chapters 7-8 (pinned, hash-checked; see lib/lora_book/models.py)
	$(PY) -m lora_book.models
	# kernels of this environment load lora_clusters.glued: computed numbers in the prose in JupyterLab
	$(PY) -m lora_book.glued
	touch $(STAMP)

# requirements.txt from pyproject.toml: every dependency of every extra, pinned (pip-tools,
# in its own environment; pins already in requirements.txt are kept while pyproject.toml
# allows them: `make lock` after editing pyproject.toml, then commit both). pip-compile
# writes torch's local label (+cpu, the build this machine's pip finds); the lock names
# the plain version, which pip resolves the same way
LOCK_VENV := $(VENV)-lock
LOCK_COMMAND := $(LOCK_VENV)/bin/pip-compile --quiet --all-extras --strip-extras --no-emit-index-url \
	--no-emit-find-links --output-file requirements.txt pyproject.toml
.PHONY: lock
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/pip install --quiet pip-tools==7.6.2; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_COMMAND)
	sed -i -E 's/^(torch==[^+ ]+)[+]cpu$$/\1/' requirements.txt

# record in every chapter the fingerprint of the library code it uses, so the execution
# cache re-runs exactly the chapters whose code changed (see README, "The execution cache")
fingerprint: $(STAMP)
	$(PY) -m lora_book.fingerprint --update book
	$(PY) -m lora_book.macros --update book

# the website; printed from it, the whole book and the exercise sheets as PDFs (Chromium;
# see lib/lora_book/pdf.py); every figure as an image file (lib/lora_book/figures.py); and
# every chapter as a reveal.js lecture deck (lib/lora_book/slides.py)
book: fingerprint browser
	$(call build-site,.,)
	@echo "site: _build/html/index.html"

# one recipe for both sites: $(1) jupyter-book's --path-output (the site lands in
# $(1)/_build/html), $(2) LORA_BOOK_STUDENT (1: without solutions)
define build-site
	$(PY) -m lora_book.cache before-build
	LORA_BOOK_STUDENT=$(2) $(VENV)/bin/jupyter-book build . --path-output $(1) -n -W --keep-going
	$(PY) -m lora_book.cache after-build
	CHROMIUM=$(CHROMIUM) $(PY) -m lora_book.pdf $(1)/_build/html
	$(PY) -m lora_book.figures $(1)/_build/html
	$(PY) -m lora_book.slides $(1)/_build/html
endef

pdf: book
	@echo "the book as one PDF: _build/html/lora-clusters-book.pdf (exercise sheets: lora-clusters-exercises.pdf)"

# chapters that train networks: at the scale LORA_BOOK_SCALE names (smoke, cpu, gpu)
GPU_CHAPTERS := book/ch06_toy_transformer.md book/ch08_depth_clustering.md book/ch09_lora_language_model.md

# on a machine with a GPU: re-execute the GPU chapters at the paper's scale and replace
# their committed cache records (same code, same record key); `make book` then renders
# them on any laptop without executing them
# MODEL=/path/to/Llama-2-7b-hf runs the real-model chapters on that model (bfloat16),
# DATA=/path/to/aclImdb (or an IMDb .csv) runs the LoRA chapter on IMDb
gpu: fingerprint
	LORA_BOOK_MODEL=$(MODEL) LORA_BOOK_DATA=$(DATA) $(PY) -m lora_book.cache execute --scale gpu $(GPU_CHAPTERS)
	$(MAKE) book

# before committing execution_cache/: drop the records no current chapter uses (a build
# never drops committed ones, so that no reader loses a record that needs a GPU)
cache-prune: $(STAMP)
	$(PY) -m lora_book.cache prune

# one line per chapter: fresh or stale (and which changed module made it so), and the
# scale and freshness of the stored results (results/) it shows
cache-status: $(STAMP)
	@$(PY) -m lora_book.cache report

# the same book without any solution (pages, notebooks and sources): for students
student-book: fingerprint browser
	$(call build-site,_build/student,1)
	@echo "student site: _build/student/_build/html/index.html (PDFs there: lora-clusters-book.pdf, lora-clusters-exercises.pdf)"

# headless Chromium for the site tests (Debian's package; playwright drives it)
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

# style first: seconds, before the slow tests
lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests benchmarks
	$(VENV)/bin/ruff format --check lib tests benchmarks
	$(PY) -m lora_book.codestyle book
	$(PY) -m lora_book.macros --check book

# the suite must leave the committed execution cache and stored results as they were.
# Two workers, a test file on one worker (--dist loadfile): the site, the panels' copies
# and the models are then built once per file (xdist's loadgroup does not group under
# pytest 9: it tags a node id that pytest 9 no longer reads)
test: lint browser
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -n 2 --dist loadfile --durations=15
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && [ -n "$$(git status --porcelain -- execution_cache results)" ]; then \
	  echo "make test changed execution_cache/ or results/:"; git status --short -- execution_cache results; exit 1; fi

# without the book builds; the static panels are still driven in Chromium
test-fast: lint browser
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -m "not book"

bench: $(STAMP)
	$(PY) benchmarks/run.py

# chapters are MyST markdown: make JupyterLab open them as notebooks (jupytext), rendered
# by jupyterlab-myst (theorems, exercises, cross-references, the book's macros, and the
# computed numbers of the prose once the cells above them have run)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
lab: $(STAMP)
	mkdir -p $(dir $(LAB_SETTINGS))
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' > $(LAB_SETTINGS)
	cd book && ../$(VENV)/bin/jupyter lab

clean:
	rm -rf _build test-output
