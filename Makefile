# mlpx: the README's two commands and their helpers.
#
#   make train            install what is missing, build, train the default model
#   make test             install what is missing, build, run every test, the format check
#                         and the installed-package consumer (examples/consumer)
#
#   make deps             install the missing Debian packages (as root; else print the command)
#   make build            configure (Ninja, Release) and build into $(BUILD_DIR)
#   make format           clang-format -i on the tracked sources
#   make format-check     fail when a tracked source is not clang-formatted
#   make example          install into $(BUILD_DIR)/_install and build + run examples/consumer
#   make clean            remove $(BUILD_DIR)
#   make sanitize-test    build with -fsanitize=address,undefined into build-asan/ (CPU only), ctest
#   make fuzz             build the libFuzzer targets with clang into build-fuzz/, run each
#                         for FUZZ_SECONDS (default 60) and print executions per target
#
# Variables: BUILD_DIR=build  CUDA=AUTO|ON|OFF  JOBS=2  CUDA_ARCHS=  (empty: CMake's rule)
#            CMAKE_ARGS=  (extra configure arguments)  TRAIN_ARGS=  (arguments of mlpx train)

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

BUILD_DIR ?= build
CUDA ?= AUTO
JOBS ?= 2
CUDA_ARCHS ?=
CMAKE_ARGS ?=
TRAIN_ARGS ?=
CMAKE ?= cmake
CTEST ?= ctest
CLANG_FORMAT ?= clang-format

# Debian packages the build, the tests and `mlpx train` need. .ci/run installs them through
# `make deps`, so this list is the only one.
DEB_PACKAGES := cmake ninja-build g++ libopenblas-dev zlib1g-dev nlohmann-json3-dev \
                libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev clang-format \
                dataset-fashion-mnist gnuplot-nox python3
# make fuzz: clang with libFuzzer and the sanitizer runtimes.
DEB_PACKAGES += clang libclang-rt-14-dev

# Sources the format rules look at: the tracked C++/CUDA files (every such file under the
# source folders when this is not a git checkout).
FORMAT_DIRS := include src kernels tests bench examples
define format_files
{ git ls-files -- '*.h' '*.cpp' '*.cu' '*.cuh' 2>/dev/null || \
  find $(FORMAT_DIRS) -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null; } \
  | while read -r f; do [ -f "$$f" ] && printf '%s\n' "$$f"; done; true
endef

INSTALL_PREFIX := $(abspath $(BUILD_DIR))/_install
CONSUMER_DIR := $(BUILD_DIR)/_consumer

.PHONY: help deps build train test ctest format format-check example clean

help:
	@sed -n '1,20s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all $(words $(DEB_PACKAGES)) packages are installed"; exit 0; fi; \
	cmd="apt-get install -y --no-install-recommends$$missing"; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: missing Debian packages:$$missing" >&2; \
	  echo "deps: install them as root with:" >&2; \
	  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive $$cmd" >&2; \
	  exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	if [ "$${MLPX_APT_UPDATED:-0}" != 1 ]; then apt-get update -q; fi; \
	DEBIAN_FRONTEND=noninteractive $$cmd

build:
	$(CMAKE) -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLPX_CUDA=$(CUDA) \
	  $(if $(CUDA_ARCHS),-DCMAKE_CUDA_ARCHITECTURES="$(CUDA_ARCHS)") $(CMAKE_ARGS)
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

train: deps build
	$(BUILD_DIR)/mlpx train $(TRAIN_ARGS)

# The checks run first and ctest last, so that ctest's closing lines ("N% tests passed, ..."
# and "Total Test time") end the output. ctest's output is also kept in
# $(BUILD_DIR)/ctest.log. Every check runs; the target fails if any of them failed.
test: deps build
	@failed=""; \
	$(MAKE) --no-print-directory format-check || failed="$$failed format-check"; \
	$(MAKE) --no-print-directory example BUILD_DIR=$(BUILD_DIR) || failed="$$failed example"; \
	[ -z "$$failed" ] || echo "test: FAILED:$$failed (ctest runs anyway)" >&2; \
	$(MAKE) --no-print-directory ctest BUILD_DIR=$(BUILD_DIR) || failed="$$failed ctest"; \
	[ -z "$$failed" ]

ctest:
	cd $(BUILD_DIR) && $(CTEST) --output-on-failure -j $(JOBS) 2>&1 | tee ctest.log

format:
	@files=$$($(format_files)); \
	[ -n "$$files" ] || { echo "format: no files"; exit 0; }; \
	echo "$$files" | xargs $(CLANG_FORMAT) -i; \
	echo "format: $$(echo "$$files" | wc -l) files formatted"

format-check:
	@files=$$($(format_files)); \
	[ -n "$$files" ] || { echo "format-check: no files"; exit 0; }; \
	if echo "$$files" | xargs $(CLANG_FORMAT) --dry-run -Werror; then \
	  echo "format-check: $$(echo "$$files" | wc -l) files are clang-formatted"; \
	else \
	  echo "format-check: FAILED; run 'make format' to fix the files named above" >&2; exit 1; \
	fi

# A real consumer: installs the built library and finds it with find_package(mlpx).
example: build
	rm -rf $(INSTALL_PREFIX) $(CONSUMER_DIR)
	$(CMAKE) --install $(BUILD_DIR) --prefix $(INSTALL_PREFIX) > $(BUILD_DIR)/install.log
	$(CMAKE) -S examples/consumer -B $(CONSUMER_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH=$(INSTALL_PREFIX)
	$(CMAKE) --build $(CONSUMER_DIR) -j $(JOBS)
	$(CONSUMER_DIR)/mlpx_consumer

clean:
	rm -rf $(BUILD_DIR)

# --- Reliability: sanitizer build and fuzzing (docs/reliability.md) -----------------------------
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= npy idx csv safetensors config roundtrip
# An allocation above FUZZ_MALLOC_MB for inputs of at most FUZZ_MAX_LEN bytes is a finding
# (gzip IDX may justify 1032 x the input: 16 MiB for 16 KiB).
FUZZ_MAX_LEN ?= 16384
FUZZ_MALLOC_MB ?= 64
SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: sanitize-test fuzz fuzz-build

sanitize-test:
	$(CMAKE) -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMLPX_CUDA=OFF \
	  -DMLPX_SANITIZE=address,undefined -DMLPX_BUILD_BENCH=OFF $(CMAKE_ARGS)
	$(CMAKE) --build $(ASAN_BUILD_DIR) -j $(JOBS)
	cd $(ASAN_BUILD_DIR) && $(SANITIZER_ENV) $(CTEST) --output-on-failure -j $(JOBS) 2>&1 | tee ctest.log

fuzz-build:
	@command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
	CC=clang CXX=clang++ $(CMAKE) -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMLPX_CUDA=OFF -DMLPX_FUZZ=ON -DMLPX_BUILD_TESTS=OFF -DMLPX_BUILD_BENCH=OFF -DMLPX_BUILD_CLI=OFF
	$(CMAKE) --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target mlpx_fuzzers

# Each target first replays fuzz/regressions/<name>/ (inputs that once crashed), then fuzzes for
# FUZZ_SECONDS from fuzz/corpus/<name>/ (seeds, read-only) into $(FUZZ_BUILD_DIR)/corpus/<name>/.
# A finding is saved as $(FUZZ_BUILD_DIR)/artifacts/<name>/crash-*; keep it under
# fuzz/regressions/<name>/ once fixed.
fuzz: fuzz-build
	@failed=""; summary=""; \
	for t in $(FUZZ_TARGETS); do \
	  bin=$(FUZZ_BUILD_DIR)/fuzz/$${t}_fuzz; work=$(FUZZ_BUILD_DIR)/corpus/$$t; art=$(FUZZ_BUILD_DIR)/artifacts/$$t; \
	  log=$(FUZZ_BUILD_DIR)/fuzz-$$t.log; mkdir -p $$work $$art; \
	  if [ -d fuzz/regressions/$$t ] && [ -n "$$(ls -A fuzz/regressions/$$t)" ]; then \
	    $(SANITIZER_ENV) $$bin -runs=0 -malloc_limit_mb=$(FUZZ_MALLOC_MB) fuzz/regressions/$$t/* > $$log.regressions 2>&1 \
	      || { echo "fuzz: $$t: a regression input fails again (see $$log.regressions)" >&2; failed="$$failed $$t"; continue; }; \
	  fi; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  if $(SANITIZER_ENV) $$bin -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 \
	       -rss_limit_mb=2048 -malloc_limit_mb=$(FUZZ_MALLOC_MB) -print_final_stats=1 \
	       -artifact_prefix=$$art/ $$work fuzz/corpus/$$t > $$log 2>&1; then result=ok; \
	  else result=FAILED; failed="$$failed $$t"; tail -40 $$log >&2; fi; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -1); \
	  rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $$log | tail -1); \
	  summary="$$summary$$(printf '%-12s %-7s %10s execs %8s/s %6s inputs' $$t $$result "$${execs:-?}" "$${rate:-?}" "$$(ls $$work | wc -l)")\n"; \
	done; \
	printf "\nfuzz summary (%s s per target):\n$$summary" "$(FUZZ_SECONDS)"; \
	[ -z "$$failed" ] || { echo "fuzz: FAILED:$$failed" >&2; exit 1; }

# --- Benchmarks (docs/benchmarks.md) -----------------------------------------------------------
# make bench-docs: regenerate docs/benchmarks.md (DEVICE=cuda: docs/gpu-results.md) from one run
# of bench/compare_torch.py, the GEMM / training-step suites and an `mlpx bench` sweep.
.PHONY: bench-docs
bench-docs: build
	BUILD_DIR=$(BUILD_DIR) scripts/bench-docs.sh
