# newswatch — the two set-up commands are `make run` and `make test`; both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CONFIG ?= config.example.toml

# Every command here may write bytecode caches (__pycache__, ignored by git) even where the
# environment says not to: without them each process compiles the project's modules again, about
# 150 ms of every `newswatch` command's start, and the tests start hundreds of them.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run once test test-pure lint typecheck bench eval soak clean scale crash-pg

$(PY):
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "newswatch needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# setup.py builds the optional C word scan (watchers/rules/_ctext.c) into the editable install.
$(VENV)/.installed: pyproject.toml setup.py watchers/rules/_ctext.c watchers/rules/_cmatch.c watchers/stories/_cstories.c | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py watchers/rules/_ctext.c watchers/rules/_cmatch.c watchers/stories/_cstories.c | $(PY)
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed          ## the demo: watch seeds/ (and real feeds) and print alerts
	$(VENV)/bin/newswatch run -c $(CONFIG)

once: $(VENV)/.installed         ## poll every source once, deliver, exit
	$(VENV)/bin/newswatch run -c $(CONFIG) --once

# Many tests wait on sockets and subprocesses: four processes share them, which keeps a 2-core
# machine busy about four fifths of the time (measured at 3,400 tests: two, 549 s against 360-440 s; six: no faster, 406 s;
# TEST_WORKERS=0: all in this one process).
TEST_WORKERS ?= 4

test: $(VENV)/.installed-test    ## the whole suite, plus the architecture contracts (PostgreSQL crash runs: make crash-pg)
	$(PY) -m pytest -q -m "not pg_crash" -n $(TEST_WORKERS)

test-pure: $(VENV)/.installed-test  ## the suite with NEWSWATCH_PURE=1: the C extensions and the lean HTTP client off
	NEWSWATCH_PURE=1 $(PY) -m pytest -q -m "not pg_crash" -n $(TEST_WORKERS)

crash-pg: $(VENV)/.installed-test  ## kill -9 crash tests on PostgreSQL (a private cluster, about 70 s)
	$(PY) -m pytest -q -rP -m pg_crash

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check watchers bot tests bench

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy watchers bot tests

bench: $(VENV)/.installed-test   ## speed figures (printed, never asserted)
	@echo "== matching in pure Python (an install without a compiler, numpy or hyperscan)"
	$(PY) bench/match_bench.py --pure --rounds 3
	@echo "== matching as make run installs it (C word scan, numpy, hyperscan on x86-64 Linux)"
	$(PY) bench/match_bench.py
	@echo "== judging an article's new words against the fuzzy terms"
	$(PY) bench/new_words.py
	$(PY) bench/feed_parsers.py
	@echo "== ingest and import"
	$(PY) bench/ingest.py
	$(PY) bench/folder_read.py
	$(PY) bench/ingest_split.py
	$(PY) bench/story_ids.py
	@echo "== story grouping: cost per article with 1,000 and 100,000 live stories"
	$(PY) bench/stories_bench.py
	$(PY) bench/stories_ingest.py
	@echo "== story replay: messages per story, 10,037 Reddit headlines to the Discord emulator"
	$(PY) bench/stories_replay.py
	@echo "== quiet channels: the busiest day, immediate vs max_per_hour = 5 vs hourly digest"
	$(PY) bench/quiet_replay.py
	@echo "== longest event-loop stall under heavy work"
	$(PY) bench/loop_stall.py
	@echo "== the check at connect: 1,000 servers gone, then back"
	$(PY) bench/presence.py 1000

eval: $(VENV)/.installed-test    ## precision and recall of fuzzy/variant matching and of stories
	$(PY) bench/match_eval.py
	$(PY) bench/match_unseen.py
	$(PY) bench/stories_eval.py
	@echo "== story pair scores: the clusterer's words beside rapidfuzz (and WordLlama, where installed)"
	$(PY) bench/stories_embedding.py

soak: $(VENV)/.installed-test    ## 200 kill -9 / restart cycles; prints lost and duplicated alerts
	$(PY) bench/soak.py --cycles 200

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis newswatch.db*

scale: $(VENV)/.installed-test   ## 1,000,000-article lookups, 20,000-feed polling, memory (long)
	$(PY) bench/scale_lookup.py --label after
	$(PY) bench/scale_pg_lookup.py --label after
	$(PY) bench/polling.py --feeds 20000 --every 60 --cycles 2
	$(PY) bench/memory.py
	$(PY) bench/delivery_scale.py
