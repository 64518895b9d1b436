# copygen: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The demo model mixes n-gram counts of its training copy into what it writes (README, "The demo model"),
# and trains for 7 minutes or 6 epochs: a fast machine gets through 4 epochs in 5 minutes, and 6 read better.
# The demo job samples cooler and keeps the best of 8 candidates per variant (the demo model's copy reads
# better so), names no colour, fibre, print or feature a product does not state, and draws a clause again
# while the model finds it less likely than e^-1.5 per token or it joins two words the training copy
# never joins, and writes only clauses of its training copy (README, "The demo model"; docs/demo-model.md).
# It asks for short copy (about 50 characters, the model's shortest length bucket): read blind, two readers
# found 35 and 36 of 60 short rank-1 copies publishable as they stand against 3 and 4 of 60 medium ones.
DEMO_JOB := --variants 3 --length short --temperature 0.7 --oversample 8 --stated-only --clause-floor -1.5 --word-pairs --known-clauses
# The full AdvertiseGen slice when the shared data sits next to the checkout, else the committed sample.
DATA       ?= $(firstword $(wildcard ../shared/data/advertisegen/train_first5000.json) samples/advertisegen_sample.jsonl)
CHECKPOINT ?= models/demo
CATALOGUE  ?= samples/catalogue.csv

.PHONY: venv demo test services lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch on this machine's disk first, so the range below installs nothing more.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,lora]'
	touch $@

venv: $(BIN)/.installed

# The clause book is the target: a demo model trained before 2026-12-05 has none, and the books of that day
# keep clauses torn where the data lost a character, naming another type's garment or leaning on their
# writer's others, know no clause's followers, keep words fewer than 20 copies use, know no clause a
# writer began a sentence with or keep clauses describing a part their writer lists nothing of, and
# those before 2026-12-06 keep rarely doubled or used characters (brands: 茵曼) and hold no clause of storing
# things to a pocket (their manifest has no "char_copies"), those of that day's morning give a clause
# speaking a register to any product of its type (no "styled"), and those before its afternoon let an effect
# follow any clause (no "effects"); either is trained again.
ifeq ($(shell grep -s '"effects"' $(CHECKPOINT)/copygen.json),)
.PHONY: $(CHECKPOINT)/clauses.txt
endif
$(CHECKPOINT)/clauses.txt: | $(BIN)/.installed
	@echo "== training the demo model on $(DATA) (about 7 minutes on 2 CPU cores)"
	$(BIN)/copygen train --data $(DATA) --out $(CHECKPOINT) --preset demo --max-minutes 7 --epochs 6 --ngram-order 5

demo: $(BIN)/.installed $(CHECKPOINT)/clauses.txt
	@echo "== generating copy for $(CATALOGUE) on the embedded default (SQLite, in-process)"
	@job=$$(COPYGEN_CHECKPOINT=$(CHECKPOINT) $(BIN)/copygen enqueue $(CATALOGUE) $(DEMO_JOB) --wait --quiet) && \
	  COPYGEN_CHECKPOINT=$(CHECKPOINT) $(BIN)/copygen status $$job && \
	  $(BIN)/copygen export $$job --format table && \
	  $(BIN)/copygen export $$job --format csv --out var/demo_copy.csv && \
	  echo "== wrote var/demo_copy.csv"

services:
	@scripts/services.sh

test: $(BIN)/.installed services
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf var .pytest_cache
