# Loa — setup / demo / test / bench / lint / clean
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := ffmpeg espeak-ng openssh-server openssh-client mpv chromium iproute2 nftables redis-server postgresql
# PyAV is built against Debian's FFmpeg (same libraries as the ffmpeg binary; its own wheel's LAME is ~2x slower)
DEB_PACKAGES += libavcodec-dev libavdevice-dev libavfilter-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev pkg-config gcc python3-dev

.PHONY: setup debs venv voices test lint format demo bench bench-public bench-intelligibility clean

setup: debs venv voices

# Labelled placeholder clips for every standard phrase and chime still unrecorded.
voices: venv
	$(BIN)/loa --config loa.toml voices placeholders

# Install the Debian packages Loa needs when some are missing: as root, do it;
# otherwise print the exact command and stop.
debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "run: sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing"; \
	    exit 1; \
	  fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml device/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ./device  # loa-device (the protocol and the player) before Loa, which depends on it
	$(BIN)/pip install -q --no-binary av -e '.[dev]'
	touch $@

test: setup lint
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff format --check pipeline tests device
	$(BIN)/ruff check pipeline tests device
	$(BIN)/mypy
	cd device && ../$(BIN)/mypy  # the protocol and the player (device/pyproject.toml; ruff checks their syntax for 3.9)
	$(BIN)/lint-imports  # the layers and the doors' distance from the store ([tool.importlinter] in pyproject.toml)

format: venv
	$(BIN)/ruff format pipeline tests device
	$(BIN)/ruff check --fix pipeline tests device

# The main job in one command: sample deployment, example bulletins (approved, with
# placeholder recordings), `loa nightly` for tomorrow to the local endpoints under data/.
demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/loa --config loa.toml bench
	$(MAKE) bench-public
	$(MAKE) bench-intelligibility

# The public side under Locust, cached against built-per-request, idle and during a nightly (docs/benchmarks.md); ~20 min.
bench-public: setup
	$(BIN)/pip install -q -e '.[load]'
	$(BIN)/python benchmarks/public_load.py --json data/bench/public_load.json
	HOSTILE_CORPUS_EXAMPLES=200 $(BIN)/python -m pytest tests/test_hostile_corpus.py -q -p no:cacheprovider

# How much of the offline voice a recogniser makes out (docs/intelligibility.md); ~1 h on 2 cores.
bench-intelligibility: setup
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/intelligibility.py --json data/bench/intelligibility.json

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache build *.egg-info
