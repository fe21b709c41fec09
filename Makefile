# make setup: .venv with everything (training, export, runtime, tests)
# make test:  the test suite (sets up first if needed)
# make demo:  the main job: the whole pipeline on the synthetic dataset, report in demo_out/report/
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test demo clean

setup: $(STAMP)

# torch is installed first, pinned: the CPU wheel on this machine; a looser pin would fetch a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[export,test,docs]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/aestheticnet pipeline --out demo_out

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
