# Two entry points, both self-contained on a machine that has only python3:
#   make run   -- create .venv, install attnsim, run the main job: check every built-in cascade,
#                 simulate the FuseMax paper's grid (out/paper/) and its study with figures and
#                 report.md (out/paper-study/)
#   make test  -- create .venv if missing, install with test extras, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/attnsim check --all
	$(BIN)/attnsim paper --out out/paper
	$(BIN)/attnsim sweep specs/studies/paper.yaml --out out/paper-study --quiet --retry-failed
	$(BIN)/attnsim plot out/paper-study

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

# Mutation testing (cosmic-ray, not in CI): one session per mutation/*.toml (a module and the tests
# that exercise it), in out/mutation/; prints each module's kill ratio. Slow: minutes to an hour per module.
# A config with [attnsim-mutation] sample = N runs a seeded sample of N mutants; mutants inside annotations
# that Python never evaluates (PEP 563) are dropped (mutation/session.py).
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	mkdir -p out/mutation
	@for config in mutation/*.toml; do \
	  name=$$(basename $$config .toml); session=out/mutation/$$name.sqlite; \
	  [ -f $$session ] || $(BIN)/cosmic-ray init $$config $$session; \
	  $(BIN)/python mutation/session.py sample $$session $$config; \
	  $(BIN)/python mutation/session.py annotations $$session; \
	  nice -n 19 $(BIN)/cosmic-ray exec $$config $$session; \
	  echo "== $$name"; $(BIN)/cr-report $$session | tail -n 3; \
	done

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
