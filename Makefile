# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ETCD   := $(VENV)/etcd/usr/bin/etcd

.PHONY: demo test test-quick lint bench clean etcd notebooks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test]'
	touch $(STAMP)

# etcd for its harness and validation (calibration/measure_etcd.py): Debian's etcd-server package, unpacked
# into .venv/etcd (apt-get download + dpkg -x: nothing installed system-wide, no daemon started).
$(ETCD): | $(STAMP)
	rm -rf $(VENV)/etcd.partial && mkdir -p $(VENV)/etcd.partial
	cd $(VENV)/etcd.partial && (apt-get download -qq etcd-server || (apt-get update -qq && apt-get download -qq etcd-server))
	dpkg -x $(VENV)/etcd.partial/etcd-server_*.deb $(VENV)/etcd.partial/root
	rm -rf $(VENV)/etcd && mv $(VENV)/etcd.partial/root $(VENV)/etcd && rm -rf $(VENV)/etcd.partial
	$(ETCD) --version

etcd: $(ETCD)

demo: $(STAMP)
	$(BIN)/cnsim run mmc --set arrival_rate=0.9 --replications 5

# The gates: ruff (style and likely bugs) and mypy (types), configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check sim models calibration cnsim tests bench
	$(BIN)/mypy

# Every test and every notebook at smoke size, after the gates; the 15 slowest are listed at the end.
test: lint $(ETCD)
	$(BIN)/python -m pytest --durations=15

# The quick lane: no statistical tests of millions of requests (slow), no real harnesses (harness).
test-quick: lint
	$(BIN)/python -m pytest -m "not slow and not harness"

# The course's notebooks, re-run at full size in place, one after the other, with their outputs and the hash of
# their sources (tests/notebook_outputs.py; tests/test_notebook_outputs.py fails on a notebook edited since).
# The time each takes is in docs/course.md; `make notebooks NOTEBOOKS=10` runs one.
notebooks: $(STAMP)
	nice -n 10 $(BIN)/python tests/notebook_outputs.py $(NOTEBOOKS)

bench: $(STAMP)
	$(BIN)/python -m bench.bench_mmc
	$(BIN)/python -m bench.bench_go
	$(BIN)/python -m bench.bench_arch
	$(BIN)/python -m bench.bench_k8s --seconds 30
	$(BIN)/python -m bench.bench_sweep
	$(BIN)/python -m bench.bench_memory
	$(BIN)/python -m bench.bench_faas --hours 1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
