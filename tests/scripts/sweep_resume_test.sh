#!/usr/bin/env bash
# `mlpx sweep` killed with SIGKILL mid-sweep, then rerun with the same command: no trial lost,
# none repeated, the records written before the kill kept as they were, and every trial's
# result the same as in a sweep that was never interrupted.
#
#   bash tests/scripts/sweep_resume_test.sh MLPX     # a few seconds
set -uo pipefail
MLPX=$1
T=$(mktemp -d /tmp/sweep-resume-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$T/base.json" <<'JSON'
{"device": "cpu",
 "data": {"source": "synthetic", "validation_split": 0.2,
          "synthetic": {"train_samples": 3000, "test_samples": 100, "features": 16, "classes": 4}},
 "model": {"layers": [{"units": 32, "activation": "relu"}, {"units": 4, "activation": "identity"}]},
 "train": {"epochs": 3, "batch_size": 16},
 "output": {"checkpoint": "", "log": ""}}
JSON
cat >"$T/space.json" <<'JSON'
{"optimizer.lr": {"loguniform": [1e-4, 1e-1]}, "model.layers.0.units": {"int": [8, 48]}}
JSON
TRIALS=12
sweep() { "$MLPX" sweep --config "$T/base.json" --space "$T/space.json" --trials $TRIALS --seed 5 --out "$1"; }

# exec: $! is mlpx itself, not a subshell that would die and leave mlpx running.
(exec "$MLPX" sweep --config "$T/base.json" --space "$T/space.json" --trials $TRIALS --seed 5 \
   --out "$T/killed" >"$T/first.txt" 2>&1) &
job=$!
for _ in $(seq 1 3000); do  # up to a minute on a loaded machine
  lines=$(cat "$T/killed/trials.jsonl" 2>/dev/null | wc -l)
  [ "$lines" -ge 3 ] && break
  kill -0 $job 2>/dev/null || break
  sleep 0.02
done
kill -KILL $job 2>/dev/null
wait $job 2>/dev/null
before=$(wc -l <"$T/killed/trials.jsonl")
[ "$before" -ge 1 ] || fail "no trial finished before the kill"
[ "$before" -lt $TRIALS ] || fail "the sweep finished before the kill (make the trials slower)"
cp "$T/killed/trials.jsonl" "$T/before.jsonl"
echo "killed after $before of $TRIALS trials"

sweep "$T/killed" >"$T/second.txt" 2>&1 || { cat "$T/second.txt"; fail "the resumed sweep failed"; }
sweep "$T/whole" >"$T/whole.txt" 2>&1 || { cat "$T/whole.txt"; fail "the uninterrupted sweep failed"; }

python3 - "$T" "$TRIALS" <<'PY' || fail "records differ (see above)"
import json, sys
t, trials = sys.argv[1], int(sys.argv[2])
def records(path):
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n"), f"{path}: ends without a line end"
    return [json.loads(line) for line in text.splitlines()]
before = open(f"{t}/before.jsonl").read()
# A torn last line (killed inside the write) is allowed before the resume; it must be gone after.
complete = before[: before.rfind("\n") + 1]
after = open(f"{t}/killed/trials.jsonl").read()
assert after.startswith(complete), "the records written before the kill changed"
killed, whole = records(f"{t}/killed/trials.jsonl"), records(f"{t}/whole/trials.jsonl")
numbers = sorted(r["trial"] for r in killed)
assert numbers == list(range(trials)), f"trials lost or repeated: {numbers}"
by_trial = {r["trial"]: r for r in whole}
for r in killed:
    w = by_trial[r["trial"]]
    assert r["params"] == w["params"], (r["trial"], r["params"], w["params"])
    assert r["score"] == w["score"], (r["trial"], r["score"], w["score"])
    assert [e["val_loss"] for e in r["epochs"]] == [e["val_loss"] for e in w["epochs"]]
print(f"ok: {len(killed)} trials, each once, as in the uninterrupted sweep")
PY
done_before=$(grep -c '^done before: ' "$T/second.txt")
[ "$done_before" -eq "$before" ] || fail "the resumed sweep read back $done_before records, expected $before"
grep -q "best: trial" "$T/second.txt" || fail "no best trial line"
[ -s "$T/killed/best.json" ] || fail "no best.json"
cmp -s "$T/killed/best.json" "$T/whole/best.json" || fail "best.json differs from the uninterrupted sweep's"
echo "PASS"
