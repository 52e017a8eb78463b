# Two commands on a fresh Debian machine: `make run` (the box on embedded defaults, demo session)
# and `make test`. Each installs what it needs: Debian packages when run as root, then a venv.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
BIN := $(VENV)/bin
# Network daemons come from Debian, never from pip.
DEB_RUN := python3-venv python3-dev gcc iproute2 fonts-dejavu-core qpdf ghostscript
DEB_TEST := $(DEB_RUN) dnsmasq-base nftables hostapd wpasupplicant iw busybox conntrack \
	chromium zbar-tools poppler-utils systemd systemd-container curl nginx-light netbase \
	debootstrap qemu-user-static binfmt-support fdisk mtools e2fsprogs nodejs
PYTEST_ARGS ?=

# QEMU's Raspberry Pi 4 model (raspi4b) needs QEMU >= 9.0: bookworm-backports has it (backports never
# upgrade anything by themselves: they are installed only where named with -t).
DEB_QEMU := qemu-system-arm qemu-utils device-tree-compiler
BACKPORTS := /etc/apt/sources.list.d/debian-backports.sources
IMAGE_DIR := build/image-arm64

.PHONY: run test lock venue lint deps-run deps-test deps-qemu bench image image-native image-boot clean vendor

define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian packages: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "Missing Debian packages (run as root to install them): $$missing"; \
		fi; \
	fi
endef

deps-run:
	$(call apt_install,$(DEB_RUN))

deps-test:
	$(call apt_install,$(DEB_TEST) $(if $(shell command -v npm),,npm))

# Python packages: uv.lock pins every one (runtime and the test extra) with hashes; installs only read it, and
# `make lock` is the only command that resolves (after editing pyproject.toml; UPGRADE=1 takes the newest
# versions). uv rather than pip-tools: one lock for Linux x86_64 and aarch64 and every Python >= 3.11 alike
# (pip-compile resolves for the machine it runs on), hashes by default, `uv sync --locked` installs exactly the
# lock (and removes what is not in it) and refuses a lock that no longer matches pyproject.toml, and
# `uv export` gives the image its runtime part (image/requirements.txt). uv comes from PyPI at UV_VERSION, the
# version the test extra pins (so a sync keeps it); it never downloads a Python (Debian's is used).
UV_VERSION := 0.13.9
UV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(BIN)/uv

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)

# --compile-bytecode: the box's services run unprivileged and cannot write __pycache__ into the venv, and where
# PYTHONDONTWRITEBYTECODE is set nothing ever does; without .pyc files every process start compiled Flask, fpdf,
# fontTools … from source again (a web worker's imports took 1.3 s of CPU here instead of 0.5 s).
$(BIN)/.installed: pyproject.toml uv.lock | $(BIN)/uv
	$(UV) sync --locked --compile-bytecode --extra test || { echo "uv sync failed (a lock that no longer matches pyproject.toml is renewed with: make lock)"; exit 1; }
	touch $@

lock: | $(BIN)/uv
	$(UV) lock $(if $(UPGRADE),--upgrade)
	$(BIN)/python image/requirements.py

# axe-core for tests/test_a11y.py: a test dependency from npm (package-lock.json pins it with its hash),
# installed by Debian's node and npm; the test injects it into the page, the box never serves it. Debian's `npm`
# is installed only where no npm is (a node packaging that bundles its own npm conflicts with it).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund --omit=optional && touch $@; \
	else echo "npm is missing (run as root to install it): tests/test_a11y.py cannot run"; fi

# Browser files the box serves itself (PDF.js): npm installs exactly package-lock.json, the script copies the chosen
# files into appliance/web/static/vendor/ (committed; tests/test_vendor_pdfjs.py compares them with the lock).
vendor: $(BIN)/.installed
	npm ci --ignore-scripts --no-audit --no-fund --omit=optional
	$(BIN)/python image/vendor_pdfjs.py

# Our own modules compiled once before the run (stale .pyc after an edit are simply recompiled in memory).
PYC = $(BIN)/python -m compileall -q -j 0 appliance bench tests >/dev/null

run: deps-run $(BIN)/.installed
	$(PYC)
	$(BIN)/sitzungsbox demo

test: deps-test $(BIN)/.installed node_modules/.installed
	$(BIN)/ruff check appliance tests bench
	$(PYC)
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

venue: deps-test $(BIN)/.installed
	$(BIN)/python -m tests.venue

bench: deps-test $(BIN)/.installed
	$(BIN)/python -m bench.onboarding

deps-qemu:
	@if ! (qemu-system-aarch64 -M help 2>/dev/null | grep -q '^raspi4b' && command -v fdtput qemu-img >/dev/null); then \
		if [ "$$(id -u)" != 0 ]; then echo "QEMU >= 9.0 fehlt (als root: make deps-qemu)"; exit 1; fi; \
		test -e $(BACKPORTS) || printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > $(BACKPORTS); \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports $(DEB_QEMU); \
	fi

# The Pi's card image: arm64 root (kernel, firmware, app) and build/image-arm64/sitzungsbox.img.
image: deps-test $(BIN)/.installed
	image/build.sh --arch arm64 --out $(IMAGE_DIR) --img $(IMAGE_DIR)/sitzungsbox.img

# That image booted in QEMU's Raspberry Pi 4 (tests/test_image_qemu.py), twice, with a power cut between.
image-boot: deps-test deps-qemu image
	SBX_IMAGE=$(IMAGE_DIR)/sitzungsbox.img $(BIN)/python -m pytest -q -ra tests/test_image_qemu.py

image-native: deps-test $(BIN)/.installed
	image/build.sh --arch amd64 --out build/image-amd64

clean:
	rm -rf $(VENV) build *.egg-info tests/artifacts bench/work node_modules
