# Two commands do all set-up on a fresh machine (Python 3.10+, PyPI only):
#   make parity   -- the main job: `resnet parity` on CPU (GPU with DEVICE=auto when one exists)
#   make test     -- lint + the pytest suite
# Both create or refresh .venv when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVICE ?= cpu
PARITY_ARGS ?=
PYTEST_ARGS ?= -n 2
# make test leaves out the tests marked slow (the zoo beyond one model of each kind) and timing (they compare
# timings, so they run alone); make test-all runs both, the timing ones in one process after the rest.
PYTEST_MARKERS ?= not slow and not timing

.PHONY: venv parity test test-all lint builders docs docs-check docs-data docs-data-gpu gpu-check bench mutate course clean
venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

parity: $(STAMP)
	$(BIN)/resnet parity --device $(DEVICE) $(PARITY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python docs/size_report.py

# The three backends' builders.py from resnet_spec/resnets.yaml (a test fails when one differs).
builders: $(STAMP)
	$(BIN)/python -m resnet_spec.codegen .

test: $(STAMP) lint
	$(BIN)/python -m pytest -m "$(PYTEST_MARKERS)" $(PYTEST_ARGS)

# Every test, the whole zoo included (about an hour on 2 cores).
test-all: $(STAMP) lint
	$(BIN)/python -m pytest -m "not timing" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m timing -p no:xdist

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# Every page in headless Chromium: screenshots in site-shots/, fails on missing images or content wider than
# the main column (says it is skipped where Chromium is not installed).
docs-check: $(STAMP)
	$(BIN)/python docs/check_site.py

# Regenerate the measured figures the docs show (minutes; run on a quiet machine, then commit).
docs-data: $(STAMP)
	$(BIN)/resnet parity --models all --force --report docs/generated/parity-eval
	$(BIN)/resnet parity --models all --blocks --input 2x3x97x131 --force --report docs/generated/parity-blocks
	$(BIN)/resnet parity --mode train --dtype float64 --models resnet18,resnet50,resnet50v1,resnet50v2,resnext50_32x4d --input 2x3x97x131 --force --report docs/generated/parity-train-fp64
	-$(BIN)/resnet parity --mode train --dtype float32 --models resnet18,resnet50,resnet50v2 --input 2x3x97x131 --force --report docs/generated/parity-train-fp32
	$(BIN)/python bench/convert_times.py
	$(BIN)/resnet bench --models resnet50 --batch 1,16 --force --json docs/generated/bench.json
	$(BIN)/resnet bench --models resnet50v1,resnet50v2 --backends keras --batch 1,16 --force --json docs/generated/bench_keras_official.json
	$(BIN)/python bench/render_bench.py docs/generated/bench.json docs/generated/bench_keras_official.json
	$(BIN)/resnet bench --models resnet50 --batch 16 --repeats 5 --min-time 0 --force --json docs/generated/bench_export.json
	$(BIN)/python bench/render_bench.py --out docs/generated/bench_export.md --chart "" docs/generated/bench_export.json
	$(BIN)/python bench/profile_resnet50.py
	$(BIN)/python bench/measure_training.py
	$(BIN)/python bench/certificate.py
	$(BIN)/python bench/int8.py
	$(BIN)/python bench/scaling.py
	$(BIN)/python bench/scaling_on_paper.py
	$(BIN)/resnet bench --mode train --models resnet18,resnet50 --batch 16 --size 112 --repeats 5 --min-time 0 --force --json docs/generated/bench_train.json
	$(BIN)/python bench/render_bench.py --out docs/generated/bench_train.md --chart "" docs/generated/bench_train.json
	$(BIN)/resnet choose --task train --force --json docs/generated/choose_train.json
	$(BIN)/resnet choose --task serve --force --json docs/generated/choose_serve.json
	$(BIN)/python bench/render_choose.py docs/generated/choose_train.json docs/generated/choose_serve.json
	$(BIN)/python bench/profile_paddle_training.py
	$(BIN)/resnet train --model resnet18 --backends torch,paddle,keras --steps 200 --size 8 --batch 32 --dtype float32 --lr 0.05 --force --json docs/generated/lockstep-fp32.json --plot docs/generated/lockstep-fp32.png

# On a CUDA machine (docs/gpu.md): regenerate the docs' GPU figures (about 25 minutes on an H100).
docs-data-gpu: $(STAMP)
	for phase in parity rest bench keras train; do PYTHON=$(BIN)/python bash bench/gpu_docs_data.sh $$phase docs/generated/gpu; done
	$(BIN)/python bench/render_gpu.py

# The GPU figures in one call that fits a 10-minute lease (bench/gpu_check.py; --budget trims and says what it left
# out). DRY_RUN=1 runs the same plan on CPU with tiny sizes into a temp folder (CI runs it through the tests).
DRY_RUN ?=
GPU_BUDGET ?= 480
gpu-check: $(STAMP)
	$(BIN)/python bench/gpu_check.py --budget $(GPU_BUDGET) $(if $(DRY_RUN),--dry-run --out $$(mktemp -d),)

bench: $(STAMP)
	$(BIN)/resnet bench

# The course's notebooks from course/src/*.py, each run from a clean kernel, outputs kept (then commit them).
course: $(STAMP)
	$(BIN)/python course/build.py

# Mutation testing of the safety-critical modules against their fast tests ([tool.mutmut] in pyproject.toml; about
# 20 minutes on 2 cores, not in CI). Writes docs/generated/mutation.md; fails on a survivor not explained in
# docs/mutation_equivalent.yaml.
mutate: $(STAMP)
	rm -rf mutants
	-$(BIN)/mutmut run
	$(BIN)/python docs/mutation_report.py

clean:
	rm -rf $(VENV) site mutants .pytest_cache .ruff_cache .mypy_cache .hypothesis
