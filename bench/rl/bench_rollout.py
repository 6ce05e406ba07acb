#!/usr/bin/env python3
"""The transformers side of the rollout benchmark: NemotronH's `generate` on a nemokit
checkpoint, the same batch rollout_bench generates (every prompt repeated G times, sampled at
the given temperature / top-p, no stop on EOS so every sequence makes exactly --new tokens).

    python3 bench/rl/bench_rollout.py MODEL_DIR PROMPTS.json [--g 8 --new 64 ...]

Prompts of different lengths are left-padded with an attention mask, as a batched
`generate` needs. One warm-up run, then --repeat timed runs; prints one JSON line shaped like
rollout_bench's: the best run's generated tokens/s and the greedy tokens of the first prompt.
run.sh runs both and prints the ratio.
"""
import argparse
import json
import time

import torch
from transformers import GenerationConfig, NemotronHForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("prompts")
    ap.add_argument("--g", type=int, default=8)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--greedy", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, info = NemotronHForCausalLM.from_pretrained(args.model, dtype=torch.float32, output_loading_info=True)
    missing = set(info["missing_keys"])
    # transformers leaves a tied head out of the tying here (it reports lm_head.weight missing
    # and draws it at random): share the embedding as the runtime does.
    if model.config.tie_word_embeddings and "lm_head.weight" in missing:
        model.lm_head.weight = model.model.embeddings.weight
        missing.discard("lm_head.weight")
    if missing or info["unexpected_keys"]:
        raise SystemExit(f"loading {args.model}: missing {sorted(missing)}, unexpected {info['unexpected_keys']}")
    model.eval()
    # Unset in a GenerationConfig means "the model's default", so the default goes too.
    model.generation_config.eos_token_id = None
    with open(args.prompts) as f:
        prompts = json.load(f)["prompts"]
    rows = [p for p in prompts for _ in range(args.g)]
    width = max(len(p) for p in rows)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows], dtype=torch.long)

    # No EOS: every row runs to max_new_tokens, as rollout_bench runs with no stop tokens.
    # top_k=0 turns off transformers' default top-50 (the runtime keeps every token).
    sample = GenerationConfig(do_sample=True, temperature=args.temperature, top_p=args.top_p, top_k=0,
                              max_new_tokens=args.new, min_new_tokens=0, eos_token_id=None, pad_token_id=pad,
                              use_cache=True)
    best, tokens = float("inf"), 0
    with torch.inference_mode():
        for r in range(args.repeat + 1):  # run 0 warms up
            t0 = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=sample)
            dt = time.perf_counter() - t0
            tokens = out[:, width:].numel()
            assert tokens == len(rows) * args.new, f"generated {tokens} tokens, expected {len(rows) * args.new}"
            if r > 0:
                best = min(best, dt)
        greedy_cfg = GenerationConfig(do_sample=False, max_new_tokens=args.greedy, eos_token_id=None, pad_token_id=pad,
                                      use_cache=True)
        first = torch.tensor([prompts[0]], dtype=torch.long)
        greedy = model.generate(input_ids=first, generation_config=greedy_cfg)[0, len(prompts[0]):].tolist()
    print(json.dumps({"tokens_per_s": tokens / best, "seconds": best, "generated_tokens": tokens,
                      "sequences": len(rows), "threads": torch.get_num_threads(), "greedy": greedy,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
