#!/usr/bin/env bash
# train_gpt and Ctrl-C: SIGINT mid-run ends it after the step in progress, exit 130, with that step's
# checkpoint and report written and said; --resume continues from it.
# check_gpt_sigint.sh <train_gpt> <work folder>
set -u
program=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
"$program" --steps 100000 --n-layer 1 --eval-interval 5 --eval-iters 1 --max-new-tokens 5 --out "$work/out" > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do   # until the first evaluation is printed: training is under way
    grep -q "^step " "$work/log" && break
    sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
cat "$work/log"
[ "$rc" -eq 130 ] || { echo "FAIL: exit $rc, expected 130 (128 + SIGINT)"; exit 1; }
grep -q "train_gpt: stopped by SIGINT after step [0-9]* of 100000: wrote checkpoint.safetensors" "$work/log" ||
    { echo "FAIL: no stop message"; exit 1; }
for f in checkpoint.safetensors losses.csv report.html; do [ -s "$work/out/$f" ] || { echo "FAIL: $f missing"; exit 1; }; done
step=$(sed -n 's/.*stopped by SIGINT after step \([0-9]*\).*/\1/p' "$work/log")
"$program" --steps $((step + 2)) --n-layer 1 --eval-interval 5 --eval-iters 1 --max-new-tokens 5 --out "$work/resumed" \
    --resume "$work/out/checkpoint.safetensors" > "$work/resume.log" 2>&1 || { cat "$work/resume.log"; echo "FAIL: resume"; exit 1; }
echo "stopped after step $step, resumed to $((step + 2))"
