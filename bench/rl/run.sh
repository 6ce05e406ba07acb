#!/usr/bin/env bash
# GRPO rollout generation, tokens/s: nemokit's runtime (rollout_bench) against transformers'
# generate (bench_rollout.py) on the same checkpoint, prompt ids and sampling settings.
#
#   bench/rl/run.sh [BUILD_DIR]        (BUILD_DIR defaults to build; needs its rollout_bench)
#
# Environment: THREADS (2), PROMPTS (8), G (8), NEW (64), TOP_P (0.95), TEMPERATURE (1.0),
# REPEAT (3), ROUNDS (1: rounds alternating the sides, each keeps its best), MODEL (a checkpoint
# folder; default the tiny SFT checkpoint, else the tiny pretrain one, else a fresh
# `nemokit model init` model with the tiny pretrain dimensions).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
BENCH="$BUILD/bench/rl/rollout_bench"
[[ -x "$BENCH" ]] || { echo "run.sh: no $BENCH (cmake --build $BUILD --target rollout_bench)" >&2; exit 1; }

THREADS=${THREADS:-2} PROMPTS=${PROMPTS:-8} G=${G:-8} NEW=${NEW:-64} TOP_P=${TOP_P:-0.95}
TEMPERATURE=${TEMPERATURE:-1.0} REPEAT=${REPEAT:-3} ROUNDS=${ROUNDS:-1}
CKPTS="${NEMOKIT_CHECKPOINT_DIR:-$HOME/.cache/nemokit/checkpoints}"
DATA="${NEMOKIT_DATA_DIR:-$HOME/.cache/nemokit/data}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# A run folder's newest step (the folder named by `latest`), or the folder itself.
step_of() { if [[ -f "$1/latest" ]]; then echo "$1/$(cat "$1/latest")"; else echo "$1"; fi; }

TOKENIZER=""
if [[ -n "${MODEL:-}" ]]; then
  MODEL="$(step_of "$MODEL")"
else
  for run in nano3-sft-tiny nano3-pretrain-tiny; do
    if [[ -f "$(step_of "$CKPTS/$run")/model.safetensors" ]]; then
      MODEL="$(step_of "$CKPTS/$run")" TOKENIZER="$CKPTS/$run/tokenizer.json"
      break
    fi
  done
fi
if [[ -z "${MODEL:-}" ]]; then
  # No trained checkpoint: random weights with the dimensions of the pretrain stage's tiny.toml.
  NEMOKIT_BIN="${NEMOKIT:-$BUILD/bin/nemokit}"
  [[ -x "$NEMOKIT_BIN" ]] || NEMOKIT_BIN=nemokit
  cat > "$TMP/config.json" <<'EOF'
{"architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "hybrid_override_pattern": "ME*-ME",
 "hidden_size": 128, "vocab_size": 4096, "layer_norm_epsilon": 1e-5, "mamba_num_heads": 8, "mamba_head_dim": 32,
 "ssm_state_size": 16, "n_groups": 2, "conv_kernel": 4, "chunk_size": 32, "num_attention_heads": 4,
 "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 384, "mlp_hidden_act": "relu2",
 "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 128,
 "moe_shared_expert_intermediate_size": 256, "routed_scaling_factor": 2.5, "norm_topk_prob": true,
 "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
EOF
  "$NEMOKIT_BIN" model init --config "$TMP/config.json" --out "$TMP/model" --seed 1234 >/dev/null
  MODEL="$TMP/model"
fi
# A private copy: a training run may rotate its step folders while the benchmark runs.
mkdir -p "$TMP/copy" && cp "$MODEL/config.json" "$MODEL/model.safetensors" "$TMP/copy/" && MODEL_SHOWN="$MODEL" MODEL="$TMP/copy"
[[ -n "$TOKENIZER" ]] || for t in "$CKPTS"/nano3-sft-tiny/tokenizer.json "$CKPTS"/nano3-pretrain-tiny/tokenizer.json; do
  [[ -f "$t" ]] && { TOKENIZER="$t"; break; }
done

# Prompt ids, rendered once and read by both sides.
TASKS=""
for t in "$DATA/nano3-rl-tiny/train.jsonl" "$HOME/.cache/nemokit/rl-tasks/arithmetic.jsonl"; do
  [[ -f "$t" ]] && { TASKS="$t"; break; }
done
if [[ -n "$TOKENIZER" && -n "$TASKS" ]]; then
  "$BENCH" render "$TOKENIZER" "$TASKS" "$PROMPTS" "$TMP/prompts.json"
  WHAT="chat-template RL prompts from $TASKS"
else
  # No tokenizer or tasks (setup not run): fixed ids of ragged lengths 24..38.
  python3 - "$PROMPTS" "$TMP/prompts.json" <<'EOF'
import json, sys
n = int(sys.argv[1])
json.dump({"prompts": [[(7 * i + 13 * j) % 4000 + 3 for j in range(24 + 2 * i)] for i in range(n)]}, open(sys.argv[2], "w"))
EOF
  WHAT="synthetic prompt ids (no tokenizer or RL tasks found)"
fi

export NEMOKIT_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$THREADS
# Rounds alternate the two sides so a busy machine slows both alike; each side keeps its best.
: > "$TMP/ours.jsonl"; : > "$TMP/theirs.jsonl"
for ((r = 0; r < ROUNDS; ++r)); do
  "$BENCH" generate "$MODEL" "$TMP/prompts.json" g=$G new=$NEW temperature=$TEMPERATURE top_p=$TOP_P \
    repeat=$REPEAT >> "$TMP/ours.jsonl"
  python3 "$HERE/bench_rollout.py" "$MODEL" "$TMP/prompts.json" --g $G --new $NEW --temperature $TEMPERATURE \
    --top-p $TOP_P --repeat $REPEAT --threads $THREADS 2>"$TMP/peer.err" >> "$TMP/theirs.jsonl" \
    || { cat "$TMP/peer.err" >&2; exit 1; }
done

python3 - "$TMP/ours.jsonl" "$TMP/theirs.jsonl" "$MODEL_SHOWN" "$WHAT" "$TMP/prompts.json" <<EOF
import json, sys
best = lambda path: max((json.loads(l) for l in open(path) if l.strip()), key=lambda r: r["tokens_per_s"])
ours, theirs = best(sys.argv[1]), best(sys.argv[2])
lens = [len(p) for p in json.load(open(sys.argv[5]))["prompts"]]
print(f"model {sys.argv[3]}")
print(f"{sys.argv[4]}: {len(lens)} prompts of {min(lens)}..{max(lens)} tokens x G=$G, {ours['generated_tokens']} "
      f"new tokens per rollout (max_new_tokens $NEW, temperature $TEMPERATURE, top-p $TOP_P, no EOS stop), "
      f"threads $THREADS, best of $REPEAT after a warm-up, rounds $ROUNDS")
assert ours["generated_tokens"] == theirs["generated_tokens"], (ours["generated_tokens"], theirs["generated_tokens"])
print(f"nemokit       {ours['tokens_per_s']:9.1f} tokens/s  ({ours['seconds']:.3f} s)")
print(f"transformers  {theirs['tokens_per_s']:9.1f} tokens/s  ({theirs['seconds']:.3f} s, torch {theirs['torch']})")
print(f"ratio nemokit / transformers: {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x")
a, b = ours["greedy"], theirs["greedy"]
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
if same is None:
    print(f"greedy, first prompt: the same {len(a)} token ids")
else:
    print(f"greedy, first prompt: DIFFER from token {same}\n  nemokit      {a}\n  transformers {b}")
    sys.exit(1)
EOF
