# ocrcli: `make demo` runs the tool on samples/, `make test` runs the tests. Both set everything up.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
OCR     := $(VENV)/bin/ocr
# The CPU build of torch (a local wheel on the project's machines; a small download elsewhere).
TORCH   ?= torch==2.13.0

.PHONY: setup demo test bench fuzz clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml ocrcli/recognition/_ctcbeam.c
	@bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[train,test,ray]'
	@touch $@

demo: setup
	$(OCR) recognize samples --output-dir demo-output --overwrite
	@for f in $$(find demo-output -name '*.txt' | sort); do printf '\n=== %s\n' "$$f"; tr '\f' '\n' < "$$f"; done

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) scripts/bench.py

# A long fuzzing run of decoding + preprocessing + segmentation (the tests run 100 examples).
FUZZ_EXAMPLES ?= 5000
fuzz: setup
	OCRCLI_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q tests/test_fuzz.py -W error::RuntimeWarning

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info demo-output
