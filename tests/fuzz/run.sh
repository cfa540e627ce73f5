#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, starting from its seed corpus (tests/fuzz/corpus/NAME).
# New inputs go to a scratch directory, so the committed corpus only changes on purpose.
# FUZZ_SEED (default 1) makes the short run in `make test` repeat the same mutations on every
# machine, so a red run can be reproduced; FUZZ_SEED=0 (as `make fuzz` uses) picks a fresh seed.
# FUZZ_JOBS targets (default: one per core) run at once; each is one process on one core.
set -euo pipefail
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-10}
JOBS=${FUZZ_JOBS:-$(nproc)}
HERE=$(cd "$(dirname "$0")" && pwd)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

run_one() {
  local fuzzer=$1 name
  name=$(basename "$fuzzer"); name=${name#fuzz_}
  mkdir -p "$SCRATCH/$name"
  # A target's dictionary (tests/fuzz/NAME.dict): tokens the fuzzer cannot find by coverage, e.g.
  # what matters to a library built without instrumentation (libvterm). Only in the long runs
  # that look for new defects (`make fuzz`, FUZZ_SEED=0): with it, fuzz_terminal still finds
  # libvterm 0.1.4 defects the recorder does not yet keep away from it (README, Limitations);
  # the short run in `make test` replays the seeds (among them the inputs of defects fixed).
  local dict=()
  if [ -f "$HERE/$name.dict" ] && [ "${FUZZ_SEED:-1}" = 0 ]; then dict=(-dict="$HERE/$name.dict"); fi
  if "$fuzzer" -seed="${FUZZ_SEED:-1}" -max_total_time="$SECONDS_EACH" -max_len=65536 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 "${dict[@]}" "$SCRATCH/$name" "$HERE/corpus/$name" >"$SCRATCH/$name.log" 2>&1; then
    echo ok >"$SCRATCH/$name.status"
  else
    echo failed >"$SCRATCH/$name.status"
  fi
}

fuzzers=("$BUILD"/tests/fuzz/fuzz_*)
for fuzzer in "${fuzzers[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_one "$fuzzer" &
done
wait

status=0
for fuzzer in "${fuzzers[@]}"; do
  name=$(basename "$fuzzer"); name=${name#fuzz_}
  if [ "$(cat "$SCRATCH/$name.status" 2>/dev/null)" != ok ]; then
    echo "fuzz_$name FAILED:"; tail -40 "$SCRATCH/$name.log"; status=1
  else
    echo "fuzz_$name: $(grep -o 'Done [0-9]* runs' "$SCRATCH/$name.log" | tail -1) in ${SECONDS_EACH}s, no crash"
  fi
done
exit $status
