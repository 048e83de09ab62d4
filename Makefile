# The two Quickstart commands of README.md: `make demo` (the main job) and `make test`.
# Both create the virtual environment on first use. torch==2.13.0 is installed first so the
# machine's local CPU build is used instead of a multi-GB CUDA download.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

.PHONY: demo test test-fast bench
demo: $(VENV)/.installed
	@command -v bwrap >/dev/null || echo "note: bubblewrap is not installed, so cells run under Landlock alone and the leaderboard will not rank them (Debian/Ubuntu: apt-get install bubblewrap)"
	$(VENV)/bin/onionbench score onion --models smoke --results runs/demo-results

test: $(VENV)/.installed
	$(PY) -m pytest -q

# the edit loop: unit, contract and smoke tests, without the tests marked slow (see README)
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed
	$(PY) benchmarks/train_throughput.py
