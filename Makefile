# mlpx: the README's two commands and their helpers.
#
#   make train            install what is missing, build, train the default model
#   make test             install what is missing, build, run every test, the format check
#                         and the installed-package consumer (examples/consumer)
#
#   make deps             install the missing Debian packages (as root; else print the command),
#                         and nanobind from PyPI into $(PY_VENV) (the Python package's build)
#   make build            configure (preset default, or cpu-only when CUDA=OFF) and build into
#                         $(BUILD_DIR)
#   make format           clang-format -i on the tracked sources
#   make format-check     fail when a tracked source is not clang-formatted
#   make lint             clang-tidy (.clang-tidy) over src/ and kernels/ .cpp files; fails on
#                         any warning. Uses a CPU-only compilation database in $(LINT_BUILD_DIR)
#   make example          install into $(BUILD_DIR)/_install (static) and _install-shared
#                         (libmlpx.so), and build + run examples/consumer against each
#   make clean            remove $(BUILD_DIR)
#   make sanitize-test    build with -fsanitize=address,undefined into build-asan/ (CPU only), ctest
#   make sim-test         the CUDA backend on the GPU simulator (sim/), with ASan and UBSan,
#                         into build-sim/: every test (GPU ones included), then the parity and
#                         simulator tests again under a second MLPX_SIM_SEED
#   make fuzz             build the libFuzzer targets with clang into build-fuzz/, run each
#                         for FUZZ_SECONDS (default 60) and print executions per target
#
# Variables: BUILD_DIR=build  CUDA=AUTO|ON|OFF|SIM  JOBS=2  CUDA_ARCHS=  (empty: CMake's rule)
#            CMAKE_ARGS=  (extra configure arguments, every target)  TRAIN_ARGS=  (of mlpx train)
#            ASAN_BUILD_DIR=build-asan  SIM_BUILD_DIR=build-sim  FUZZ_BUILD_DIR=build-fuzz
#            LINT_BUILD_DIR=build-tidy  PY_VENV=build-venv
# Each build flavour is a preset of CMakePresets.json (cmake --list-presets); these targets add
# only what the variables change.

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
DEB_PACKAGES := cmake ninja-build g++ libopenblas-dev libdnnl-dev zlib1g-dev nlohmann-json3-dev \
                libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev clang-format \
                clang-tidy dataset-fashion-mnist gnuplot-nox python3
# make sim-test and CUDA=SIM: Boost.Context, the simulator's fibers.
DEB_PACKAGES += libboost-context-dev
# make fuzz: clang with libFuzzer and the sanitizer runtimes.
DEB_PACKAGES += clang libclang-rt-14-dev
# Data-parallel training (src/dist/, MLPX_MPI): Open MPI, its headers and its launcher, mpirun.
DEB_PACKAGES += libopenmpi-dev openmpi-bin
# tests/cluster/: hosts as network namespaces (ip), a rate limit (tc) and packet loss (nft).
DEB_PACKAGES += iproute2 nftables
# tests/cluster/slurm_test.sh: SLURM's daemons and commands, munge for their authentication,
# nsenter (util-linux) to start them inside the hosts' namespaces.
DEB_PACKAGES += slurm-wlm munge util-linux
# The Python package (python/, MLPX_PYTHON) and its tests (tests/python): Python's headers,
# venv, numpy and pytest from Debian; nanobind, which Debian 12 lacks, from PyPI into the
# virtual environment $(PY_VENV) (it sees Debian's packages). Every configure below passes its
# interpreter to CMake, so MLPX_PYTHON AUTO finds nanobind. torch is optional (tests skip).
DEB_PACKAGES += python3-dev python3-venv python3-numpy python3-pytest
# mlpx.sklearn's tests (tests/python/test_sklearn.py): scikit-learn's check_estimator, and
# pandas, whose DataFrames the estimators take (the tests skip without them).
DEB_PACKAGES += python3-sklearn python3-pandas
PY_VENV ?= build-venv
NANOBIND_VERSION ?= 2.15.0
# Debian's interpreter, the one its python3-* packages are for (not a python3 earlier on PATH).
DEB_PYTHON ?= /usr/bin/python3
# ONNX export (src/export/, MLPX_ONNX): the ONNX library (its protobuf classes, checker and shape
# inference) and protobuf's headers from Debian; ONNX Runtime, which Debian 12 lacks, from PyPI
# into $(PY_VENV): the export tests run the exported models in it (they skip without it).
DEB_PACKAGES += libonnx-dev libprotobuf-dev
ONNXRUNTIME_VERSION ?= 1.22.1

# Sources the format rules look at: the tracked C++/CUDA files (every such file under the
# source folders when this is not a git checkout).
FORMAT_DIRS := include src kernels tests bench examples
define format_files
{ git ls-files -- '*.h' '*.cpp' '*.cu' '*.cuh' 2>/dev/null || \
  find $(FORMAT_DIRS) -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null; } \
  | while read -r f; do [ -f "$$f" ] && printf '%s\n' "$$f"; done; true
endef

# The configure, build and test presets (CMakePresets.json) and the folder each builds in. A
# target configures with `cmake --preset P`, adding -B DIR when its folder is another one; it
# builds with `cmake --build --preset P` in the preset's folder, else with `cmake --build DIR`
# (a build preset cannot be pointed at another folder).
PRESET_DIR_default := build
PRESET_DIR_cpu-only := build-nocuda
PRESET_DIR_asan := build-asan
PRESET_DIR_sim := build-sim
PRESET_DIR_fuzz := build-fuzz
PRESET_DIR_lint := build-tidy
# $(call preset_dir_differs,PRESET,DIR): non-empty when DIR is not PRESET's folder.
preset_dir_differs = $(filter-out $(abspath $(PRESET_DIR_$(1))),$(abspath $(2)))
# $(call configure,PRESET,DIR,EXTRA ARGUMENTS)
configure = $(CMAKE) --preset $(1) $(if $(call preset_dir_differs,$(1),$(2)),-B $(2)) $(3) \
  $$(test -x $(PY_VENV)/bin/python && echo -DPython_EXECUTABLE=$(abspath $(PY_VENV))/bin/python) \
  $(CMAKE_ARGS)
# $(call build_preset,PRESET,DIR,TARGET): TARGET (optional) must be the build preset's own.
build_preset = $(if $(call preset_dir_differs,$(1),$(2)),$(CMAKE) --build $(2) $(if $(3),--target $(3)),$(CMAKE) --build --preset $(1)) -j $(JOBS)

# make build: CUDA=OFF is the cpu-only preset; AUTO and ON start from the default one.
BUILD_PRESET := $(if $(filter OFF,$(shell echo '$(CUDA)' | tr a-z A-Z)),cpu-only,default)

INSTALL_PREFIX := $(abspath $(BUILD_DIR))/_install
CONSUMER_DIR := $(BUILD_DIR)/_consumer
SHARED_INSTALL_PREFIX := $(abspath $(BUILD_DIR))/_install-shared
SHARED_CONSUMER_DIR := $(BUILD_DIR)/_consumer-shared

.PHONY: help deps build train test ctest format format-check lint example clean

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

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
	@if $(PY_VENV)/bin/python -c 'import nanobind, numpy, pytest' 2>/dev/null; then \
	  echo "deps: $(PY_VENV)/ has nanobind $$($(PY_VENV)/bin/python -m nanobind --version)"; \
	else \
	  echo "deps: nanobind $(NANOBIND_VERSION) from PyPI into $(PY_VENV)/"; \
	  rm -rf $(PY_VENV); \
	  $(DEB_PYTHON) -m venv --system-site-packages $(PY_VENV); \
	  $(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check nanobind==$(NANOBIND_VERSION); \
	  $(PY_VENV)/bin/python -c 'import nanobind, numpy, pytest'; \
	fi
	@if $(PY_VENV)/bin/python -c 'import onnxruntime' 2>/dev/null; then \
	  echo "deps: $(PY_VENV)/ has onnxruntime $$($(PY_VENV)/bin/python -c 'import onnxruntime; print(onnxruntime.__version__)')"; \
	else \
	  echo "deps: onnxruntime $(ONNXRUNTIME_VERSION) from PyPI into $(PY_VENV)/"; \
	  $(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check onnxruntime==$(ONNXRUNTIME_VERSION) \
	    || echo "deps: onnxruntime is not installed; the ONNX Runtime tests will skip" >&2; \
	fi

build:
	$(call configure,$(BUILD_PRESET),$(BUILD_DIR),-DMLPX_CUDA=$(CUDA) \
	  $(if $(CUDA_ARCHS),-DCMAKE_CUDA_ARCHITECTURES="$(CUDA_ARCHS)"))
	$(call build_preset,$(BUILD_PRESET),$(BUILD_DIR))

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

# clang-tidy with the checks of .clang-tidy (WarningsAsErrors: every finding fails). The files:
# every src/**/*.cpp and kernels/*.cpp that the CPU-only compilation database holds, i.e. the
# library and the CLI; the CUDA-only kernels/*.cpp (not compiled without nvcc) and .cu files are
# left out and named. The database comes from configuring the lint preset (no build needed).
# run-clang-tidy when installed, else xargs -P; the log ($(LINT_BUILD_DIR)/lint.log) is kept
# without the colour codes that Debian's run-clang-tidy always asks for.
LINT_BUILD_DIR ?= build-tidy
CLANG_TIDY ?= clang-tidy
RUN_CLANG_TIDY ?= $(firstword $(shell command -v run-clang-tidy run-clang-tidy-14 2>/dev/null))

lint:
	@command -v $(CLANG_TIDY) >/dev/null || { echo "lint: $(CLANG_TIDY) is missing (make deps)" >&2; exit 1; }
	$(call configure,lint,$(LINT_BUILD_DIR)) --log-level=WARNING >/dev/null
	@db=$(LINT_BUILD_DIR)/compile_commands.json; files=""; skipped=""; \
	for f in $$(find src -name '*.cpp'; find kernels -maxdepth 1 -name '*.cpp'); do \
	  if grep -qF "\"file\": \"$(CURDIR)/$$f\"" $$db; then files="$$files $$f"; else skipped="$$skipped $$f"; fi; \
	done; \
	[ -n "$$files" ] || { echo "lint: no files in $$db" >&2; exit 1; }; \
	n=$$(echo $$files | wc -w); start=$$(date +%s); \
	echo "lint: $(CLANG_TIDY) on $$n files, $(JOBS) at a time"; \
	if [ -n "$(RUN_CLANG_TIDY)" ]; then \
	  regexes=$$(for f in $$files; do printf '%s$$ ' "$(CURDIR)/$$f" | sed 's/[.+]/\\&/g'; done); \
	  $(RUN_CLANG_TIDY) -quiet -p $(LINT_BUILD_DIR) -j $(JOBS) -clang-tidy-binary "$$(command -v $(CLANG_TIDY))" \
	    $$regexes 2>&1 | sed 's/\x1b\[[0-9;]*m//g' > $(LINT_BUILD_DIR)/lint.log || rc=$$?; \
	else \
	  printf '%s\n' $$files | xargs -P $(JOBS) -n 1 $(CLANG_TIDY) --quiet -p $(LINT_BUILD_DIR) \
	    > $(LINT_BUILD_DIR)/lint.log 2>&1 || rc=$$?; \
	fi; \
	[ -z "$$skipped" ] || echo "lint: not in the CPU-only build, not checked:$$skipped"; \
	if [ "$${rc:-0}" -ne 0 ]; then \
	  grep -E 'warning:|error:' $(LINT_BUILD_DIR)/lint.log | sort -u >&2 || cat $(LINT_BUILD_DIR)/lint.log >&2; \
	  echo "lint: FAILED (full output: $(LINT_BUILD_DIR)/lint.log)" >&2; exit 1; \
	fi; \
	echo "lint: $$n files clean in $$(( $$(date +%s) - start )) s"

# A real consumer: installs the built library and finds it with find_package(mlpx), in each
# form: the static libmlpx.a, then libmlpx.so (MLPX_SHARED=ON on the same build folder: the same
# objects relinked, nothing recompiled), whose install and consumer
# scripts/check-shared-library.sh checks (SONAME, only the public API exported, the consumer
# needing libmlpx alone). The build folder's MLPX_SHARED is set back as it was.
example: build
	rm -rf $(INSTALL_PREFIX) $(CONSUMER_DIR) $(SHARED_INSTALL_PREFIX) $(SHARED_CONSUMER_DIR)
	@was=$$(sed -n 's/^MLPX_SHARED:BOOL=//p' $(BUILD_DIR)/CMakeCache.txt); \
	trap '$(CMAKE) -S . -B $(BUILD_DIR) -DMLPX_SHARED=$${was:-OFF} > /dev/null' EXIT; \
	for form in static shared; do \
	  if [ $$form = static ]; then prefix=$(INSTALL_PREFIX); consumer=$(CONSUMER_DIR); shared=OFF; \
	  else prefix=$(SHARED_INSTALL_PREFIX); consumer=$(SHARED_CONSUMER_DIR); shared=ON; fi; \
	  echo "example: the consumer against the $$form library"; \
	  $(CMAKE) -S . -B $(BUILD_DIR) -DMLPX_SHARED=$$shared > /dev/null; \
	  if [ $$form = shared ]; then $(CMAKE) --build $(BUILD_DIR) --target mlpx_shared -j $(JOBS); fi; \
	  $(CMAKE) --install $(BUILD_DIR) --prefix $$prefix > $(BUILD_DIR)/install-$$form.log; \
	  $(CMAKE) -S examples/consumer -B $$consumer -G Ninja -DCMAKE_BUILD_TYPE=Release \
	    -DCMAKE_PREFIX_PATH=$$prefix > /dev/null; \
	  $(CMAKE) --build $$consumer -j $(JOBS); \
	  $$consumer/mlpx_consumer; \
	done; \
	scripts/check-shared-library.sh "$$(find $(SHARED_INSTALL_PREFIX) -name 'libmlpx.so.*.*' | head -1)" \
	  $(SHARED_CONSUMER_DIR)/mlpx_consumer

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
# The asan and sim test presets (CMakePresets.json) set the same variables: keep them equal.
SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# On the simulator without detect_stack_use_after_return: ASan's fake stacks (one per fiber
# stack) made the suite several times slower (sim/README.md).
SIM_SANITIZER_ENV := $(subst detect_stack_use_after_return=1,detect_stack_use_after_return=0,$(SANITIZER_ENV))

SIM_BUILD_DIR ?= build-sim
# The simulator's scheduling seed of the second pass (the first uses its default, 0x5EED): a
# kernel whose bits depend on the order of its threads or blocks fails one of the two.
SIM_SECOND_SEED ?= 2
# The second pass leaves out the racecheck (the first pass ran it) and the 2^20-parameter
# optimizer cases (elementwise: no order to vary beyond what the smaller sizes cover), about
# two thirds of the parity tests' time.
SIM_SECOND_SEED_SKIP ?= _n1048579

.PHONY: sanitize-test sim-test fuzz fuzz-build

sanitize-test:
	$(call configure,asan,$(ASAN_BUILD_DIR))
	$(call build_preset,asan,$(ASAN_BUILD_DIR))
	cd $(ASAN_BUILD_DIR) && $(SANITIZER_ENV) $(CTEST) --output-on-failure -j $(JOBS) 2>&1 | tee ctest.log

sim-test:
	$(call configure,sim,$(SIM_BUILD_DIR))
	$(call build_preset,sim,$(SIM_BUILD_DIR))
	cd $(SIM_BUILD_DIR) && { $(SIM_SANITIZER_ENV) $(CTEST) --output-on-failure -j $(JOBS) && \
	  MLPX_SIM_SEED=$(SIM_SECOND_SEED) MLPX_SIM_RACECHECK=0 $(SIM_SANITIZER_ENV) $(CTEST) \
	    --output-on-failure -j $(JOBS) -L '^(sim|parity)$$' -E '$(SIM_SECOND_SEED_SKIP)' ; } 2>&1 | tee ctest.log

fuzz-build:
	@command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
	$(call configure,fuzz,$(FUZZ_BUILD_DIR))
	$(call build_preset,fuzz,$(FUZZ_BUILD_DIR),mlpx_fuzzers)

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
# make bench-docs: regenerate docs/benchmarks.md (DEVICE=cuda: docs/gpu-benchmarks.md) from one run
# of bench/compare_torch.py, the GEMM / training-step suites and an `mlpx bench` sweep.
.PHONY: bench-docs
bench-docs: build
	BUILD_DIR=$(BUILD_DIR) scripts/bench-docs.sh
