#!/usr/bin/env bash
# tests/run.sh BIN...: runs each test program, prints its lines, and ends with
# "N passed, N failed, N skipped". Exits non-zero on any failure (or any skip
# when REQUIRE_GPU=1 and a GPU test skipped).
set -u
pass=0; fail=0; skip=0; gpu_skip=0
for t in "$@"; do
  name=$(basename "$t")
  echo "== $name"
  out=$(mktemp)
  start=$(date +%s)
  "$t" > "$out" 2>&1
  rc=$?
  cat "$out"
  p=$(grep -c '^ok ' "$out"); f=$(grep -c '^FAIL ' "$out"); s=$(grep -c '^skip ' "$out")
  g=$(grep -c '^skip .*\(GPU\|CUDA\)' "$out")
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exited with status $rc"; f=1
  fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s)); gpu_skip=$((gpu_skip + g))
  echo "-- $name: $p passed, $f failed, $s skipped ($(( $(date +%s) - start )) s)"
  rm -f "$out"
done
echo "$pass passed, $fail failed, $skip skipped"
if [ "${REQUIRE_GPU:-0}" = 1 ] && [ $gpu_skip -gt 0 ]; then
  echo "REQUIRE_GPU=1 but $gpu_skip GPU checks were skipped"; exit 1
fi
[ $fail -eq 0 ]
