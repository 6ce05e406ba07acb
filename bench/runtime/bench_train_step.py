#!/usr/bin/env python3
"""Training-step throughput (forward + backward, tokens/s): nemokit's CPU runtime vs PyTorch
running transformers' NemotronH, same weights, same batch, same number of threads.

    python3 bench/runtime/bench_train_step.py --bench build/bench/runtime/runtime_bench

A small hybrid config with all four layer kinds is built with transformers (random weights),
saved, and loaded by both sides. Both take one warm-up pass and report the best of --repeat
timed passes; their losses must agree (same model, same tokens) or the run fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from safetensors.torch import save_file
from transformers import NemotronHConfig, NemotronHForCausalLM

COMMON = dict(
    hybrid_override_pattern="MEM*EM-",
    conv_kernel=4,
    chunk_size=64,
    mlp_hidden_act="relu2",
    n_routed_experts=8,
    num_experts_per_tok=2,
    routed_scaling_factor=2.5,
    norm_topk_prob=True,
    tie_word_embeddings=False,
    use_cache=False,
)
CONFIGS = {
    # the default: a tiny model, where per-operation costs rather than matrix products decide
    "tiny": dict(COMMON, hidden_size=128, vocab_size=2048, mamba_num_heads=4, mamba_head_dim=32, ssm_state_size=32,
                 n_groups=1, num_attention_heads=4, num_key_value_heads=2, head_dim=32, intermediate_size=512,
                 moe_intermediate_size=128, moe_shared_expert_intermediate_size=256),
    # four times the width: matrix products dominate both sides
    "small": dict(COMMON, hidden_size=256, vocab_size=4096, mamba_num_heads=8, mamba_head_dim=32, ssm_state_size=64,
                  n_groups=2, num_attention_heads=8, num_key_value_heads=2, head_dim=32, intermediate_size=1024,
                  moe_intermediate_size=256, moe_shared_expert_intermediate_size=512),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path to the built runtime_bench")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds alternating the two sides (best pass wins)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    CONFIG = CONFIGS[args.config]
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    config = NemotronHConfig(**CONFIG)
    config._attn_implementation = "sdpa"
    model = NemotronHForCausalLM(config).float().train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, CONFIG["vocab_size"], (args.batch, args.seq), generator=g)
    targets = torch.full_like(ids, -100)
    targets[:, :-1] = ids[:, 1:]

    def torch_pass():
        model.zero_grad(set_to_none=False)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        return time.perf_counter() - t0, loss.item()

    # The sides alternate round by round so a busy machine slows both alike; each keeps its
    # best pass.
    ours, best = None, float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        inputs = os.path.join(tmp, "inputs.safetensors")
        save_file({"input_ids": ids.contiguous(), "targets": targets.contiguous()}, inputs)
        env = dict(os.environ, NEMOKIT_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
        torch_pass()  # warm-up
        for _ in range(args.rounds):
            out = subprocess.run([args.bench, tmp, inputs, str(args.repeat)], check=True, capture_output=True,
                                 text=True, env=env)
            run = json.loads(out.stdout)
            if ours is None or run["tokens_per_s"] > ours["tokens_per_s"]:
                ours = run
            for _ in range(args.repeat):
                dt, loss_value = torch_pass()
                best = min(best, dt)

    torch_tps = args.batch * args.seq / best
    if abs(ours["loss"] - loss_value) > 1e-3 * abs(loss_value):
        print(f"loss mismatch: nemokit {ours['loss']} vs PyTorch {loss_value}", file=sys.stderr)
        sys.exit(1)
    print(f"config {args.config}: pattern {CONFIG['hybrid_override_pattern']} hidden {CONFIG['hidden_size']} "
          f"batch {args.batch} x seq {args.seq}, threads {args.threads}")
    print(f"nemokit  {ours['tokens_per_s']:10.1f} tokens/s   loss {ours['loss']:.5f}")
    print(f"PyTorch  {torch_tps:10.1f} tokens/s   loss {loss_value:.5f}  (torch {torch.__version__})")
    print(f"ratio nemokit / PyTorch: {ours['tokens_per_s'] / torch_tps:.2f}x")


if __name__ == "__main__":
    main()
