#!/usr/bin/env bash
# crash_consistency.sh: kills nemokit with SIGKILL at random points while it writes, and checks
# that every final path still holds a complete version (the previous one or the new one), that
# the next run recovers, and that a full file system gives a clear error and nothing half-written.
#
#   scripts/crash_consistency.sh [--kills N] [--quick] [--keep] [--work DIR] [--writers a,b]
#
# Writers: a pretraining run saving a checkpoint every step (checkpoint.dir, `latest`, and the
# model artifact it publishes when it finishes), pretraining data prep (Megatron .idx/.bin shards,
# blend.json, metadata.json, the data artifact), and an image build (the layer cache under
# build/, the OCI layout under oci/<tag>, containers/<tag>.sqsh). The checks themselves are in
# crash_consistency_check.py. NEMOKIT names the binary (default: build/bin/nemokit). --writers
# picks some of checkpoint,data,image; --keep keeps the work folder (default: a new one in /tmp).
# Exit status: 0 when no final file was corrupt and every check passed, 1 otherwise, 2 for a
# usage or setup error.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
NEMOKIT="${NEMOKIT:-$repo/build/bin/nemokit}"
CHECK="$here/crash_consistency_check.py"
kills_total=200
keep=0
work=""
writers=(checkpoint data image)

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills_total="${2:?--kills needs a number}"; shift 2 ;;
    --quick) kills_total=21; shift ;;
    --keep) keep=1; shift ;;
    --work) work="${2:?--work needs a folder}"; shift 2 ;;
    --writers) IFS=, read -r -a writers <<<"${2:?--writers needs a list}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "crash_consistency.sh: unknown option $1" >&2; usage ;;
  esac
done
[ -x "$NEMOKIT" ] || { echo "crash_consistency.sh: no nemokit binary at $NEMOKIT (set NEMOKIT=)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "crash_consistency.sh: python3 is needed for the checks" >&2; exit 2; }

if [ -n "$work" ] && [ -e "$work" ]; then  # a folder of an earlier run of this script only
  [ -f "$work/.nemokit-crash-work" ] || { echo "crash_consistency.sh: $work exists and is not a work folder of this script" >&2; exit 2; }
  rm -rf "$work"
fi
work="${work:-$(mktemp -d "${TMPDIR:-/tmp}/nemokit-crash.XXXXXX")}"
mkdir -p "$work" && touch "$work/.nemokit-crash-work"
cleanup() {
  [ -n "${full_mnt:-}" ] && mountpoint -q "$full_mnt" && umount "$full_mnt"
  if [ "$keep" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Every nemokit of this script uses its own job, artifact and cache roots, one thread (the
# machine is shared) and never reads the user's env.toml.
export CRASH_CHECK_HASH_CACHE="$work/hashes.json"
export NEMOKIT_JOB_ROOT="$work/jobs" NEMOKIT_ARTIFACTS_ROOT="$work/artifacts" \
       NEMOKIT_BUILD_CACHE_DIR="$work/cache" NEMOKIT_NUM_THREADS=1 NEMOKIT_ENV="$work/env.toml"
: > "$work/env.toml"

# Per writer: kills delivered, runs that ended before their kill, checks run, checks that found
# something, distinct corrupt paths (a damaged file is counted once, however many checks see it
# again), and failures that are no file (a run that did not recover, an unclear ENOSPC message).
declare -A kills=() checks=() bad_checks=() corrupt=() finished=() failures=()
declare -A corrupt_paths=()
total_failures=0

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }

now_ms() { date +%s%3N; }

# --- inputs ----------------------------------------------------------------------------------

# Two different text inputs, so that a run over an earlier run's output changes its bytes: a
# final path mixing two runs is then visible, which it would not be with identical reruns.
make_inputs() {
  local corpus="${NEMOKIT_CORPUS_DIR:-$HOME/.cache/nemokit/corpus}"
  mkdir -p "$work/text-a" "$work/text-b"
  if [ -f "$corpus/kjv-bible.txt" ] && [ -f "$corpus/austen-emma.txt" ]; then
    head -c 1500000 "$corpus/kjv-bible.txt" > "$work/text-a/a.txt"
    cat "$corpus/austen-emma.txt" "$corpus/austen-persuasion.txt" | head -c 1200000 > "$work/text-b/b.txt"
  else  # no corpus (scripts/setup.sh extracts it): Debian's license texts, always present
    for i in $(seq 20); do cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0; done > "$work/text-a/a.txt"
    for i in $(seq 20); do cat /usr/share/common-licenses/GPL-2 /usr/share/common-licenses/MPL-2.0; done > "$work/text-b/b.txt"
  fi
}

# The shipped tiny config shrunk to a few KB of weights: a step and its checkpoint take well
# under a second, so a kill lands in every phase (startup, step, save, `latest`, pruning).
write_configs() {
  local v
  for v in a b; do
    cat > "$work/data-$v.toml" <<EOF
defaults = ["tiny"]
[data]
inputs = ["$work/text-$v"]
train_tokenizer = { vocab_size = 512, min_frequency = 2, special_tokens = ["<|endoftext|>"] }
seq_length = 32
shard_size_tokens = 40000
name = "crash-data"
output = "$work/data"
EOF
  done
  cat > "$work/train.toml" <<EOF
defaults = ["tiny"]
[model]
hybrid_override_pattern = "M*-E"
hidden_size = 32
mamba_num_heads = 2
mamba_head_dim = 16
ssm_state_size = 8
n_groups = 1
chunk_size = 16
num_attention_heads = 2
num_key_value_heads = 1
head_dim = 16
intermediate_size = 64
n_routed_experts = 4
num_experts_per_tok = 2
moe_intermediate_size = 32
moe_shared_expert_intermediate_size = 32
vocab_size = 512
[train]
seq_length = 32
micro_batch_size = 2
global_batch_size = 2
warmup_steps = 1
eval_interval = 1000000
eval_steps = 1
save_interval = 1
log_interval = 1
sample_tokens = 0
[data]
inputs = ["$work/text-a"]
train_tokenizer = { vocab_size = 512, min_frequency = 2, special_tokens = ["<|endoftext|>"] }
seq_length = 32
name = "crash-train-data"
output = "$work/train-data"
[checkpoint]
dir = "$work/ckpt"
keep = 2
EOF
  mkdir -p "$work/ctx"
  printf 'FROM scratch\nCOPY payload.bin /data/\nCOPY note.txt /\nENV CRASH=1\n' > "$work/ctx/Dockerfile"
}

# --- the writers -------------------------------------------------------------------------------
# writer_cmd_W ITERATION prints nothing and sets `cmd` (an array); writer_paths_W prints the
# "KIND PATH" pairs the checker verifies for it.

cmd=()
ckpt_steps=1000000
writer_cmd_checkpoint() {  # never ends by itself: every start resumes and saves a step each step
  cmd=("$NEMOKIT" run nano3 pretrain -c "$work/train.toml" train.max_steps="$ckpt_steps")
}
writer_paths_checkpoint() { echo "checkpoint $work/ckpt artifacts $work/artifacts"; }

writer_cmd_data() {  # alternates between the two inputs
  local v=a; [ $(( $1 % 2 )) = 1 ] && v=b
  cmd=("$NEMOKIT" data prep nano3 pretrain -c "$work/data-$v.toml")
}
writer_paths_data() { echo "data $work/data artifacts $work/artifacts"; }

writer_cmd_image() {  # new layer bytes every time, so the cache grows and the outputs change
  head -c $(( 4 * 1024 * 1024 )) /dev/urandom > "$work/ctx/payload.bin"
  echo "build $1" > "$work/ctx/note.txt"
  cmd=("$NEMOKIT" build -f "$work/ctx/Dockerfile" --context "$work/ctx" --tag crash)
}
writer_paths_image() {
  echo "buildcache $work/cache/build oci $work/cache/oci/crash squashfs $work/cache/containers/crash.sqsh"
}

# --- running, killing, checking ----------------------------------------------------------------

# Starts "${cmd[@]}" in a session of its own (so the kill reaches every process it started),
# at the lowest priority; sets `pid`.
start_cmd() {
  setsid nice -n 19 "${cmd[@]}" > "$work/last.log" 2>&1 < /dev/null &
  pid=$!
}

# SIGKILL to the whole session, then waits until none of its processes is left.
kill_group() {
  kill -KILL -- "-$1" 2>/dev/null
  wait "$1" 2>/dev/null
  while pgrep -s "$1" >/dev/null; do sleep 0.05; done
}

# Counts the paths of the checker's CORRUPT lines ("CORRUPT PATH: why") not seen before.
record_corrupt() {
  local w=$1 line path
  while IFS= read -r line; do
    path="${line#CORRUPT }"; path="${path%%: *}"
    [ -n "${corrupt_paths[$path]:-}" ] && continue
    corrupt_paths[$path]=1
    corrupt[$w]=$(( ${corrupt[$w]:-0} + 1 ))
  done < <(grep '^CORRUPT' <<<"$2")
}

# A failure that is no corrupt file: logged and counted (it fails the run all the same).
fail_check() {
  failures[$1]=$(( ${failures[$1]:-0} + 1 )); total_failures=$(( total_failures + 1 ))
  log "$1: FAILED: $2"
}

# Runs the checker on a writer's final paths; counts the check and what it found corrupt.
verify() {
  local w=$1 out rc
  # shellcheck disable=SC2046
  out="$(python3 "$CHECK" $(writer_paths_"$w"))"; rc=$?
  checks[$w]=$(( ${checks[$w]:-0} + 1 ))
  local bad; bad=$(grep -c '^CORRUPT' <<<"$out")
  if [ "$rc" -ne 0 ] || [ "$bad" -gt 0 ]; then
    bad_checks[$w]=$(( ${bad_checks[$w]:-0} + 1 ))
    record_corrupt "$w" "$out"
    log "$w: $bad corrupt after ${2:-a run}:"; grep '^CORRUPT' <<<"$out" | sed 's/^/    /'
    # Keep the evidence (the next run would overwrite it), the first three times.
    if [ "${evidence:-0}" -lt 3 ]; then
      evidence=$(( ${evidence:-0} + 1 ))
      cp -a "$work" "$work.corrupt-$w-${checks[$w]}" 2>/dev/null && log "    state kept in $work.corrupt-$w-${checks[$w]}"
    fi
  fi
  grep '^LEFTOVER' <<<"$out" > "$work/leftovers-$w.txt"
}

# Runs a writer to completion; prints its duration in ms into `took`; fails loudly if it fails.
run_to_end() {
  local w=$1 t0; t0=$(now_ms)
  start_cmd; wait "$pid"; local rc=$?
  took=$(( $(now_ms) - t0 ))
  if [ "$rc" -ne 0 ]; then
    log "$w: ${cmd[*]} failed (exit $rc):"; tail -20 "$work/last.log" | sed 's/^/    /'
    return 1
  fi
}

# One kill: start, sleep a random part of the writer's duration, SIGKILL, check.
kill_once() {
  local w=$1 i=$2 span=$3 delay
  writer_cmd_"$w" "$i"
  delay=$(( (RANDOM * 32768 + RANDOM) % span ))
  start_cmd
  sleep "$(printf '%d.%03d' $(( delay / 1000 )) $(( delay % 1000 )))"
  if kill -0 "$pid" 2>/dev/null; then
    kill_group "$pid"
    kills[$w]=$(( ${kills[$w]:-0} + 1 ))
  else  # it finished first: a complete run, still checked, not counted as a kill; it must succeed
    wait "$pid" || { fail_check "$w" "a run that ended before its kill failed (exit $?):"; tail -5 "$work/last.log" | sed 's/^/    /'; }
    finished[$w]=$(( ${finished[$w]:-0} + 1 ))
  fi
  verify "$w" "a kill at ${delay} ms"
}

# A writer's whole turn: one complete run (the "previous version", and its duration), N kills
# at random points of that duration, then one run to the end that must recover.
exercise() {
  local w=$1 n=$2 i span
  log "$w: first complete run"
  ckpt_steps=3  # the checkpoint run's startup and three saved steps
  writer_cmd_"$w" 0
  ckpt_steps=1000000
  run_to_end "$w" || { fail_check "$w" "the first run failed"; return; }
  verify "$w" "the first run"
  # Past the end for the checkpoint run (it never ends); just past it for the others, so the
  # last writes (metadata, publishing, the rename) are hit too.
  if [ "$w" = checkpoint ]; then span=$(( 2 * took )); else span=$(( took * 11 / 10 )); fi
  log "$w: complete run took ${took} ms; $n kills within ${span} ms"
  i=1
  while [ "${kills[$w]:-0}" -lt "$n" ]; do
    kill_once "$w" "$i" "$span"
    i=$(( i + 1 ))
    [ "$i" -gt $(( 3 * n + 10 )) ] && { log "$w: it keeps finishing before the kill; stopping at ${kills[$w]:-0}"; break; }
  done
  recover "$w" "$i"
}

# After the kills: one more run must succeed and leave complete files (the checkpoint run
# resumes from `latest` and trains two more steps; the model artifact is published).
recover() {
  local w=$1 i=$2 step=0
  if [ "$w" = checkpoint ]; then
    [ -f "$work/ckpt/latest" ] && step=$(( 10#$(sed 's/step_//' "$work/ckpt/latest") ))
    ckpt_steps=$(( step + 2 )); writer_cmd_checkpoint; ckpt_steps=1000000
  else
    writer_cmd_"$w" "$i"
  fi
  if ! run_to_end "$w"; then
    fail_check "$w" "the run after the kills did not recover"
    return
  fi
  verify "$w" "the recovery run"
  case $w in
    checkpoint)
      [ "$(cat "$work/ckpt/latest")" = "$(printf 'step_%07d' $(( step + 2 )))" ] ||
        fail_check checkpoint "recovery ended at $(cat "$work/ckpt/latest"), not step $(( step + 2 ))"
      grep -q "resum" "$work/last.log" || log "checkpoint: note: the recovery run's log does not say it resumed" ;;
    data) [ -f "$work/data/metadata.json" ] || fail_check data "no metadata.json after recovery" ;;
    image) [ -f "$work/cache/containers/crash.sqsh" ] || fail_check image "no crash.sqsh after recovery" ;;
  esac
  log "$w: recovered in ${took} ms; leftover temporary files: $(wc -l < "$work/leftovers-$w.txt")"
  sed -n '1,5s/^/    /p' "$work/leftovers-$w.txt"
}

# --- a full file system ------------------------------------------------------------------------

# A writer into a tmpfs too small for its output must fail with a message naming the path and
# the lack of space, and leave nothing half-written at a final path.
full_fs() {
  full_mnt="$work/full"
  mkdir -p "$full_mnt"
  if [ "$(id -u)" != 0 ]; then
    log "full file system: SKIPPED: mounting a small tmpfs needs root"; full_mnt=""; return
  fi
  if ! mount -t tmpfs -o size=1m tmpfs "$full_mnt" 2>"$work/mount.err"; then
    log "full file system: SKIPPED: mount -t tmpfs was refused: $(cat "$work/mount.err")"; full_mnt=""; return
  fi
  [[ " ${writers[*]} " == *" data "* ]] && full_case data "$full_mnt/data" "data $full_mnt/data artifacts $work/artifacts" \
    "$NEMOKIT" data prep nano3 pretrain -c "$work/data-a.toml" data.output="$full_mnt/data"
  head -c $(( 4 * 1024 * 1024 )) /dev/urandom > "$work/ctx/payload.bin"
  [[ " ${writers[*]} " == *" image "* ]] && NEMOKIT_BUILD_CACHE_DIR="$full_mnt/cache" full_case image "$full_mnt/cache" \
    "buildcache $full_mnt/cache/build oci $full_mnt/cache/oci/crash squashfs $full_mnt/cache/containers/crash.sqsh" \
    "$NEMOKIT" build -f "$work/ctx/Dockerfile" --context "$work/ctx" --tag crash
  umount "$full_mnt"; full_mnt=""
}

full_case() {
  local w=$1 where=$2 paths=$3; shift 3
  rm -rf "${where:?}"/* 2>/dev/null
  cmd=("$@"); start_cmd; wait "$pid"; local rc=$?
  local msg; msg="$(grep -i 'no space' "$work/last.log" | head -1)"
  if [ "$rc" -eq 0 ]; then
    fail_check "$w" "full file system: it succeeded in 1 MiB (make the output bigger)"
  elif [ -z "$msg" ] || [[ "$msg" != *"$full_mnt"* ]]; then
    fail_check "$w" "full file system: exit $rc without a message naming the path and the lack of space:"
    tail -5 "$work/last.log" | sed 's/^/    /'
  else
    log "full file system, $w: exit $rc: $msg"
  fi
  local out
  # shellcheck disable=SC2086
  out="$(python3 "$CHECK" $paths)"
  if grep -q '^CORRUPT' <<<"$out"; then
    log "full file system, $w: half-written final files:"; grep '^CORRUPT' <<<"$out" | sed 's/^/    /'
    record_corrupt "$w" "$out"
  else
    log "full file system, $w: no final path half-written ($(grep -c '^LEFTOVER' <<<"$out") temporary files left)"
  fi
}

# --- main ---------------------------------------------------------------------------------------

main() {
  local t0; t0=$(now_ms)
  log "nemokit: $NEMOKIT; work folder: $work; $kills_total kills over ${#writers[@]} writers"
  make_inputs
  write_configs
  # RUN/COPY steps mount overlays in namespaces of their own: the image build needs root.
  if [ "$(id -u)" != 0 ]; then
    log "image: SKIPPED: nemokit build needs root here (overlayfs and namespaces for its steps)"
    writers=(checkpoint data)
  fi
  local per=$(( (kills_total + ${#writers[@]} - 1) / ${#writers[@]} )) w
  for w in "${writers[@]}"; do exercise "$w" "$per"; done
  full_fs
  local total_kills=0
  echo
  printf '%-11s %6s %9s %8s %11s %14s %9s\n' writer kills finished checks "bad checks" "corrupt paths" failures
  for w in "${writers[@]}"; do
    printf '%-11s %6d %9d %8d %11d %14d %9d\n' "$w" "${kills[$w]:-0}" "${finished[$w]:-0}" "${checks[$w]:-0}" \
      "${bad_checks[$w]:-0}" "${corrupt[$w]:-0}" "${failures[$w]:-0}"
    total_kills=$(( total_kills + ${kills[$w]:-0} ))
  done
  log "took $(( ($(now_ms) - t0) / 1000 )) s"
  [ "$total_failures" -gt 0 ] && echo "other failures: $total_failures (see FAILED above)"
  echo "kills: $total_kills, corrupt final files: ${#corrupt_paths[@]}"
  [ "${#corrupt_paths[@]}" -eq 0 ] && [ "$total_failures" -eq 0 ]
}

main
