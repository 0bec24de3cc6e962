# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Isaac Sim's extensions bundle protobuf 5.26.0: the committed schemas are
# proven to load on it (tests/test_schemas.py) from this side folder.
PB_FLOOR := $(VENV)/protobuf-floor

.PHONY: run test bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ray]'
	$(PY) -m pip install --quiet --no-deps --target $(PB_FLOOR) 'protobuf==5.26.0'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/hil run scenarios/reach.yaml

# Two pytest workers, each taking whole files: most tests wait on real
# processes, real time and real sockets, so two at once nearly halve the
# wall time on two cores (TEST_JOBS=0 runs them in this one process).
TEST_JOBS ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile

# Speed is measured here, not in tests; each prints its figures beside a
# baseline taken in the same run (docs/benchmarks.md has the last figures).
# Every benchmark ends with `targets: N met, M missed (names)` and exits 1 when
# it missed one; the leading '-' lets the rest run. `bench peers` measures
# zenoh and dora only where the optional extra is installed: pip install -e '.[bench]'.
bench: $(STAMP)
	-$(VENV)/bin/hil bench bus
	-$(VENV)/bin/hil bench peers
	-$(VENV)/bin/hil bench sim
	-$(VENV)/bin/hil bench policy
	-$(VENV)/bin/hil bench hw
	-$(VENV)/bin/hil bench bag
	-$(VENV)/bin/hil bench run
	-$(VENV)/bin/hil bench sweep
	-$(VENV)/bin/hil bench camera

clean:
	rm -rf $(VENV) build *.egg-info
