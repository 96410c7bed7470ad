# Keyword-conditioned Reddit title generation.
#
#   make test                                  set up .venv and run the tests
#   make encode train generate decode          the default pipeline (configs/default.yaml)
#   make encode train generate decode CONFIG=configs/gpt2-124M.yaml
#   make encode OVERRIDES="encode.repeat=5"    single-key overrides
#
# Stages are real files under data/runs/<config name>/. Each depends on the slice of
# the config it reads (data/runs/<run>/.config/<stage>.json, rewritten only when that
# slice changes), on its inputs and on the modules its code imports, so `make decode`
# rebuilds only what is stale. Which is which is declared once, in pipeline/stages.py.

CONFIG ?= configs/default.yaml
OVERRIDES ?=
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN := $(basename $(notdir $(CONFIG)))
# Keeps TensorFlow's C++ start-up chatter out of the logs; errors still show.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup test export encode train generate decode report \
        bench bench-encode bench-generate bench-guidance bench-decode bench-export bench-train clean clean-run

help:  ## list the targets
	@echo "Usage: make <target> [CONFIG=configs/<run>.yaml] [OVERRIDES='section.key=value ...']"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

# GPU=1 adds TensorFlow's CUDA libraries (requirements-gpu.lock) for a Linux machine with an NVIDIA GPU.
GPU ?= 0
GPU_STAMP := $(VENV)/.installed-gpu
$(GPU_STAMP): requirements-gpu.lock $(STAMP)
	$(PY) -m pip install --quiet -r requirements-gpu.lock
	@touch $@

setup: $(STAMP) $(if $(filter 1,$(GPU)),$(GPU_STAMP))  ## create .venv and install the pinned dependencies (GPU=1: CUDA too)

.PHONY: gpu-lock-check
gpu-lock-check: $(STAMP)  ## resolve requirements-gpu.lock with pip (downloads metadata only, installs nothing)
	$(PY) -m pip install --dry-run --quiet -r requirements.lock -r requirements-gpu.lock

# The run's rules (one per stage: target, config slice, inputs, code, recipe) and the per-stage
# config slices come from the stage table (pipeline/stages.py), rewritten on every call that
# names a stage but replaced only when their text changed.
STAGE_GOALS := export encode train generate decode report
ifneq ($(filter $(STAGE_GOALS) data/%,$(MAKECMDGOALS)),)
DEPS_MK := data/runs/$(RUN)/.config/deps.mk
$(DEPS_MK): $(STAMP) FORCE_DEPS
	@mkdir -p $(dir $@)
	@$(PY) -m pipeline.stages make-deps --config $(CONFIG) $(OVERRIDES) > $@.new || { rm -f $@.new; exit 2; }
	@cmp -s $@.new $@ && rm $@.new || mv $@.new $@
include $(DEPS_MK)
endif
.PHONY: FORCE_DEPS
FORCE_DEPS:

export: $(EXPORT_TARGET)  ## stage 0: submissions dump -> subreddit,title CSV

# Synthetic monthly dumps for configs/export-example.yaml, made only when missing (no code
# prerequisite, so an existing dump is never rewritten). Real dumps go elsewhere in data/dumps/.
data/dumps/synthetic/RS_%.zst: | $(STAMP)
	$(PY) -m pipeline.export.dumpgen $@ --rows 30000 --seed 0
data/dumps/synthetic/RS_%.parquet: | $(STAMP)
	$(PY) -m pipeline.export.dumpgen $@ --rows 30000 --seed 0

encode: $(ENCODE_TARGET)  ## stage 1: CSV -> keyword-tagged training text (+ stats JSON)
train: $(TRAIN_TARGET)  ## stage 2: fine-tune GPT-2 (or a from-scratch model) on the encoded text
generate: $(GENERATE_TARGET)  ## stage 3: bulk generation conditioned on category + keywords
decode: $(DECODE_TARGET) report  ## stage 4: generated text -> clean CSV, then the report
report: $(REPORT_TARGET)  ## quality report (JSON, Markdown, PNG) of the decoded titles

test: $(STAMP)  ## set up .venv and run the test suite
	$(PY) -m pytest -q

bench: bench-encode bench-generate bench-guidance bench-decode bench-export bench-train  ## all benchmarks

bench-encode: $(STAMP)  ## encoder rows/s: Ray vs single-process nlp.pipe vs one remote call per row
	$(PY) -m bench.encode

bench-generate: $(STAMP)  ## finished titles/s: our generator vs a loop of gpt2.generate
	$(PY) -m bench.generate

bench-guidance: $(STAMP)  ## finished titles/s: keyword-guided vs unguided sampling
	$(PY) -m bench.guidance

bench-decode: $(STAMP)  ## decoding 1,000,000 samples: throughput and peak memory
	$(PY) -m bench.decode

bench-export: $(STAMP)  ## DuckDB export rows/s and peak memory on a 1,000,000-row dump
	$(PY) -m bench.export

bench-train: $(STAMP)  ## training tokens/s: bf16 and XLA against fp32 at the default and 124M shapes, loss checked
	$(PY) -m bench.train

# The peer benchmark's own venv, from its own lock file: torch and transformers never enter .venv.
PEER_VENV := .venv-peer
$(PEER_VENV)/.installed: bench/peer.lock
	@test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet -r bench/peer.lock
	@touch $@

.PHONY: bench-peer
bench-peer: $(STAMP) $(PEER_VENV)/.installed  ## ours vs transformers on identical weights: logits parity, titles/s
	$(PY) -m bench.peer --config $(CONFIG) $(OVERRIDES)

clean-run:  ## delete this run's outputs (data/runs/<run>/)
	rm -rf data/runs/$(RUN)

clean:  ## delete every generated file, .venv and .venv-peer
	rm -rf data/runs data/export data/models $(VENV) .venv-peer

# Titles on demand (docs/serving.md): a trained run answering single requests.
.PHONY: titles serve bench-serve
titles: $(STAMP)  ## one-shot titles: make titles OVERRIDES='--category cooking --keywords "garlic bread" -n 5'
	$(PY) -m pipeline.serve.titles --config $(CONFIG) $(OVERRIDES)

serve: $(STAMP)  ## HTTP API + web page on 127.0.0.1 (port from the config's serve: section)
	$(PY) -m pipeline.serve --config $(CONFIG) $(OVERRIDES)

bench-serve: $(STAMP)  ## title server: 200 requests, 16 at once vs one at a time: latency, titles/s, gain, RSS
	$(PY) -m bench.serve --config $(CONFIG) $(OVERRIDES)

# Models in and out of transformers' format (docs/models.md): the run's trained model -> data/runs/<run>/hf/.
.PHONY: export-hf
export-hf: $(STAMP)  ## the trained model in transformers' format (safetensors, no torch) -> data/runs/<run>/hf/
	$(PY) -m pipeline.hf --config $(CONFIG) $(OVERRIDES)

# Judging a model on held-out titles (docs/quality.md): split the encode input by a hash of the
# title, encode and train on the rest in data/runs/<run>-eval/, prompt with the held-out titles,
# generate guided and unguided, compare. Fresh stages are skipped (pipeline.evaluate).
.PHONY: eval
eval: $(STAMP)  ## evaluate the config's model on held-out titles -> data/runs/<run>-eval/eval.md
	$(PY) -m pipeline.evaluate --config $(CONFIG) $(OVERRIDES)

.PHONY: bench-best-of
bench-best-of: $(STAMP)  ## best-of-n: kept titles/s, fluency and keyword share at k = 1, 2, 4
	$(PY) -m bench.best_of --config $(CONFIG)
