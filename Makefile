# Keyword-conditioned Reddit title generation.
#
#   make test                                  set up .venv and run the tests
#   make encode train generate decode          the default pipeline (configs/default.yaml)
#   make encode train generate decode CONFIG=configs/gpt2-124M.yaml
#   make encode OVERRIDES="encode.repeat=5"    single-key overrides
#
# Stages are real files under data/runs/<config name>/. Each depends on the slice of
# the config it reads (data/runs/<run>/.config/<stage>.json, rewritten only when that
# slice changes), on its inputs and on its code, so `make decode` rebuilds only what is stale.

CONFIG ?= configs/default.yaml
OVERRIDES ?=
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN := $(basename $(notdir $(CONFIG)))
CFGDIR = $(RUN_DIR)/.config
# Keeps TensorFlow's C++ start-up chatter out of the logs; errors still show.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup test export encode train generate decode report \
        bench bench-encode bench-generate bench-guidance bench-decode bench-export clean clean-run

help:  ## list the targets
	@echo "Usage: make <target> [CONFIG=configs/<run>.yaml] [OVERRIDES='section.key=value ...']"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	@touch $@

setup: $(STAMP)  ## create .venv and install the pinned dependencies

# Per-run make variables (input paths) and per-stage config slices, from the config itself.
ifeq ($(filter help setup clean test bench bench-%,$(MAKECMDGOALS)),)
ifneq ($(MAKECMDGOALS),)
DEPS_MK := data/runs/$(RUN)/.config/deps.mk
# Always re-run (OVERRIDES may have changed) but only replace the file when its text changed.
$(DEPS_MK): $(STAMP) FORCE_DEPS
	@mkdir -p $(dir $@)
	@$(PY) -m pipeline.config make-deps $(CONFIG) $(OVERRIDES) > $@.new
	@cmp -s $@.new $@ && rm $@.new || mv $@.new $@
-include $(DEPS_MK)
endif
endif
.PHONY: FORCE_DEPS
FORCE_DEPS:

COMMON_CODE := pipeline/__init__.py pipeline/config.py pipeline/errors.py pipeline/io.py pipeline/format.py
EXPORT_CODE := $(COMMON_CODE) $(wildcard pipeline/export*.py) pipeline/dumps.py $(wildcard bigquery/*.sql)
ENCODE_CODE := $(COMMON_CODE) keyword_encode.py pipeline/encode.py pipeline/keywords.py pipeline/nlp.py
TRAIN_CODE := $(COMMON_CODE) pipeline/model.py pipeline/train.py pipeline/train_log.py
GENERATE_CODE := $(COMMON_CODE) pipeline/generate.py pipeline/guidance.py pipeline/model.py \
                 pipeline/sampler.py pipeline/prompts.py pipeline/jobfile.py
DECODE_CODE := $(COMMON_CODE) keyword_decode.py pipeline/decode.py pipeline/report.py pipeline/nlp.py \
               pipeline/measures.py pipeline/dedupe.py pipeline/samples.py pipeline/report_plot.py \
               pipeline/keyword_filter.py

export: $(EXPORT_OUTPUT)  ## stage 0: submissions dump -> subreddit,title CSV
$(EXPORT_OUTPUT): $(CFGDIR)/export.json $(EXPORT_INPUTS) $(EXPORT_CODE)
	$(PY) -m pipeline.export --config $(CONFIG) $(OVERRIDES)

# Synthetic monthly dumps for configs/export-example.yaml, made only when missing (no code
# prerequisite, so an existing dump is never rewritten). Real dumps go elsewhere in data/dumps/.
data/dumps/synthetic/RS_%.zst: | $(STAMP)
	$(PY) -m pipeline.dumpgen $@ --rows 30000 --seed 0
data/dumps/synthetic/RS_%.parquet: | $(STAMP)
	$(PY) -m pipeline.dumpgen $@ --rows 30000 --seed 0

encode: $(RUN_DIR)/encoded.txt  ## stage 1: CSV -> keyword-tagged training text (+ stats JSON)
$(RUN_DIR)/encoded.txt: $(CFGDIR)/encode.json $(ENCODE_INPUT) $(ENCODE_CODE)
	$(PY) keyword_encode.py --config $(CONFIG) $(OVERRIDES)

train: $(RUN_DIR)/train.done  ## stage 2: fine-tune GPT-2 (or a from-scratch model) on the encoded text
$(RUN_DIR)/train.done: $(CFGDIR)/train.json $(RUN_DIR)/encoded.txt $(TRAIN_CODE)
	$(PY) -m pipeline.train --config $(CONFIG) $(OVERRIDES)

generate: $(RUN_DIR)/generated.jsonl  ## stage 3: bulk generation conditioned on category + keywords
$(RUN_DIR)/generated.jsonl: $(CFGDIR)/generate.json $(RUN_DIR)/train.done $(PROMPTS_FILE) $(GENERATE_CODE)
	$(PY) -m pipeline.generate --config $(CONFIG) $(OVERRIDES)

decode: $(RUN_DIR)/decoded.csv report  ## stage 4: generated text -> clean CSV, then the report
$(RUN_DIR)/decoded.csv: $(CFGDIR)/decode.json $(RUN_DIR)/generated.jsonl $(RUN_DIR)/encoded.txt $(DECODE_CODE)
	$(PY) keyword_decode.py --config $(CONFIG) $(OVERRIDES)

report: $(RUN_DIR)/report.json  ## quality report (JSON, Markdown, PNG) of the decoded titles
$(RUN_DIR)/report.json: $(RUN_DIR)/decoded.csv $(RUN_DIR)/encoded.txt $(DECODE_CODE)
	$(PY) -m pipeline.report --config $(CONFIG) $(OVERRIDES)

test: $(STAMP)  ## set up .venv and run the test suite
	$(PY) -m pytest -q

bench: bench-encode bench-generate bench-guidance bench-decode bench-export  ## all benchmarks

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

clean-run:  ## delete this run's outputs (data/runs/<run>/)
	rm -rf data/runs/$(RUN)

clean:  ## delete every generated file and the .venv
	rm -rf data/runs data/export data/models $(VENV)
