#!/usr/bin/env python3
"""The architecture rules of mlpx, checked over the tree (run by ctest as `layers`).

1. Folders are layers: a file includes only headers of its own folder and of the folders
   its layer may use (ALLOWED below). "mlpx/..." is the public API, "<layer>/..." a folder
   under src/ (or kernels/), a bare "name.h" a file beside the includer (or at the root of its
   layer: tests/test_util.h). Both spellings count: #include "mlpx/x.h" and <mlpx/x.h>. The
   tests, the benchmarks, the fuzzers and the example consumer are layers of the same table:
   tests and bench sit above the library (never the tool, src/cli), fuzz and examples see the
   public API only.
2. One op, one stem: every kernel kernels/<stem>.cu has its CPU twin src/cpu/<stem>.cpp and
   its Tensor-level entry src/ops/<stem>.cpp.
3. No #if on the CUDA or MPI backend in the library: a CPU-only build links kernels/stub.cpp,
   a build without MPI src/dist/mpi_stub.cpp.
4. The library computes and returns: only src/cli/ (and the log sink's default, src/core/log.cpp)
   writes to the terminal.
5. One switch per family: the layers that compute (core up to nn) write `case Activation::`,
   `case OptimizerType::`, `case Loss::` and `case ScheduleType::` only in the family's formula
   file, whose visit() is generated from the family's table in include/mlpx/enums.h; the rest
   call visit().
Prints one line per violation and exits 1 when there is any.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# layer -> the layers its files may include (each may always include itself).
ALLOWED = {
    "include/mlpx": set(),
    "src/core": {"include/mlpx"},
    "src/math": {"include/mlpx"},
    "src/cpu": {"include/mlpx", "src/math", "src/core"},
    "kernels": {"include/mlpx", "src/math", "src/core", "sim"},  # sim: the launch macro only
    "src/ops": {"include/mlpx", "src/math", "src/core", "src/cpu", "kernels"},
    "src/io": {"include/mlpx", "src/core"},
    "src/nn": {"include/mlpx", "src/math", "src/core", "src/ops"},
    "src/dist": {"include/mlpx", "src/core", "kernels"},
    "src/train": {"include/mlpx", "src/math", "src/core", "src/ops", "src/nn", "src/io", "src/dist",
                  "kernels"},
    "src/export": {"include/mlpx", "src/core", "src/io", "src/train"},
    # The tools above training: the hyperparameter sweep, the bench sweep, the init study.
    "src/tune": {"include/mlpx", "src/math", "src/core", "src/ops", "src/nn", "src/io", "src/train"},
    "src/cli": {"include/mlpx", "src/train", "src/tune", "src/export"},
    "python/src": {"include/mlpx"},  # the Python extension: the public API only
    # Above the library: the tests may reach into any layer of it (and the simulator's
    # counters), the benchmarks into the ops they time; neither into the tool.
    "tests": {"include/mlpx", "src/core", "src/math", "src/cpu", "kernels", "src/ops", "src/io",
              "src/nn", "src/dist", "src/train", "src/tune", "src/export", "sim"},
    "bench": {"include/mlpx", "src/core", "src/math", "src/cpu", "kernels", "src/ops", "src/io",
              "src/nn", "src/dist", "src/train", "src/tune"},
    "fuzz": {"include/mlpx"},
    "examples": {"include/mlpx"},  # the consumer of the installed package: its headers only
}
# What a layer may take from a lower layer it otherwise does not reach.
ONLY = {("src/train", "kernels"): {"kernels/graph.h", "kernels/device_counters.h"},
        ("src/dist", "kernels"): {"kernels/nccl.h"},
        # sim: the launch macro, and the counters of kernels/device_counters.cpp
        ("kernels", "sim"): {"mlpx_sim/launch.h", "mlpx_sim/counters.h", "mlpx_sim/runtime.h"}}

PREFIX = {"mlpx": "include/mlpx", "kernels": "kernels", "math": "src/math", "core": "src/core",
          "cpu": "src/cpu", "ops": "src/ops", "nn": "src/nn", "train": "src/train", "io": "src/io",
          "cli": "src/cli", "dist": "src/dist", "tune": "src/tune", "export": "src/export",
          "mlpx_sim": "sim"}
SOURCE = re.compile(r".*\.(h|cpp|cu|cuh)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
ANGLE_INCLUDE = re.compile(r'^\s*#\s*include\s+<([^>]+)>', re.M)
# The families whose one switch is their visit(): enum -> the header that holds it.
FAMILY_SWITCH = {"Activation": "src/math/activation.h", "OptimizerType": "src/math/optimizers.h",
                 "Loss": "src/math/loss.h", "ScheduleType": "src/nn/schedule.cpp"}
COMPUTING_LAYERS = ("src/core", "src/math", "src/cpu", "kernels", "src/ops", "src/nn")


def layer_of(path):
    for layer in ALLOWED:
        if path.startswith(layer + "/"):
            return layer
    return None


def target_layer(include, includer_dir, angle=False):
    """The layer `include` names and its path, or (None, ...) for a header outside the tree (a
    system or third-party one)."""
    head = include.split("/", 1)[0]
    if "/" in include and head in PREFIX:
        return PREFIX[head], include
    if angle:
        return None, include
    beside = os.path.normpath(os.path.join(includer_dir, include))
    return layer_of(beside), beside


def main():
    faults = []
    files = []
    for layer in ALLOWED:
        for dirpath, _, names in os.walk(os.path.join(ROOT, layer)):
            for name in names:
                if SOURCE.match(name):
                    files.append(os.path.relpath(os.path.join(dirpath, name), ROOT))
    for path in sorted(files):
        layer = layer_of(path)
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        includes = [(i, False) for i in INCLUDE.findall(text)]
        includes += [(i, True) for i in ANGLE_INCLUDE.findall(text)]
        for include, angle in includes:
            target, spelled = target_layer(include, os.path.dirname(path), angle)
            if target is None or target == layer:
                continue
            if target not in ALLOWED[layer]:
                spelling = f"<{include}>" if angle else f'"{include}"'
                faults.append(f"{path}: includes {spelling} ({target}), a layer {layer} may not use")
            elif (layer, target) in ONLY and spelled not in ONLY[(layer, target)]:
                faults.append(f"{path}: includes {include}; {layer} takes only "
                              f"{', '.join(sorted(ONLY[(layer, target)]))} from {target}")
        if layer in COMPUTING_LAYERS:
            for enum, home in FAMILY_SWITCH.items():
                if path != home and re.search(r"\bcase\s+" + enum + r"::", text):
                    faults.append(f"{path}: switches on {enum}; call math::visit ({home}), "
                                  "generated from the family's table")
        if path.startswith(("src/", "kernels/", "include/")) and "MLPX_WITH_CUDA" in text:
            faults.append(f"{path}: tests MLPX_WITH_CUDA; call cuda:: unconditionally "
                          "(kernels/stub.cpp stands in without the backend)")
        if path.startswith(("src/", "kernels/", "include/")) and re.search(r"MLPX_(WITH|HAVE)_MPI", text):
            faults.append(f"{path}: tests an MPI build macro; call dist::built_with_mpi() "
                          "(src/dist/mpi_stub.cpp stands in without MPI)")
        above_library = ("src/cli", "tests", "bench", "fuzz", "examples")
        if layer not in above_library and path != "src/core/log.cpp":
            code = re.sub(r"//[^\n]*", "", text)
            code = re.sub(r"\bs?n?printf\s*\(\s*(buf|hex|out)\b", "", code)  # formatting into a buffer
            if re.search(r"std::(cout|cerr|clog)\b|\bprintf\s*\(|\bfprintf\s*\(|\bputs\s*\(", code):
                faults.append(f"{path}: writes to the terminal; return values or use the log "
                              "handler (core/log.h)")
    for cu in sorted(os.listdir(os.path.join(ROOT, "kernels"))):
        if not cu.endswith(".cu"):
            continue
        stem = cu[:-3]
        for twin in (f"src/cpu/{stem}.cpp", f"src/ops/{stem}.cpp"):
            if not os.path.exists(os.path.join(ROOT, twin)):
                faults.append(f"kernels/{cu}: expected {twin} beside it (one op, one stem)")
    for fault in faults:
        print("layers: " + fault)
    print(f"layers: {len(files)} files checked, {len(faults)} violation(s)")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
