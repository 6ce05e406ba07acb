#!/usr/bin/env python3
"""Training throughput and MFU on one GPU: nemokit's GPU trainer (gpu_train_bench) beside
transformers' NemotronH in bf16 (PyTorch, AdamW), same weights, tokens, batch and sequence length.

    python3 bench/gpu/bench_train_gpu.py --bench BUILD/bench/gpu/gpu_train_bench [--config dense-1b|moe] ...

The model is built with random weights by transformers and saved; gpu_train_bench loads the same
files. Both run --warmup steps, then --steps timed steps (median). Their first losses must agree
(the same model on the same tokens, both in bf16) or the run fails. MFU = tokens/s x training
FLOPs per token (mfu_flops.hpp: 6 per multiply-accumulate of every matrix product, causal
attention and the SSD scan's products) / --peak-tflops (989: H100/H200 SXM dense bf16). Prints
one line per side and the ratio; --json writes the figures for bench/gpu/check.sh's table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from transformers import NemotronHConfig, NemotronHForCausalLM
from transformers.utils import import_utils

MAMBA = dict(mamba_num_heads=64, mamba_head_dim=64, ssm_state_size=128, n_groups=8, chunk_size=128, conv_kernel=4)
ATTENTION = dict(num_attention_heads=16, num_key_value_heads=4, head_dim=128)
COMMON = dict(MAMBA, **ATTENTION, hidden_size=2048, vocab_size=131072, mlp_hidden_act="relu2",
              tie_word_embeddings=False, use_cache=False)
CONFIGS = {
    # ~1.2B: 12 Mamba2, 9 MLP and 3 attention layers (Nemotron-H's mix), untied head.
    "dense-1b": dict(COMMON, hybrid_override_pattern="M-M-M-M*" * 3, intermediate_size=8192),
    # ~1.8B, ~0.95B active: 7 Mamba2, 7 MoE (32 experts, top 4, a shared expert) and 2 attention.
    "moe": dict(COMMON, hybrid_override_pattern="MEMEM*EMEMEM*EME", n_routed_experts=32, num_experts_per_tok=4,
                moe_intermediate_size=1024, moe_shared_expert_intermediate_size=2048, routed_scaling_factor=2.5,
                norm_topk_prob=True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path to the built gpu_train_bench")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="dense-1b")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    config = NemotronHConfig(**cfg)
    config._attn_implementation = "sdpa"
    model = NemotronHForCausalLM(config)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg["vocab_size"], (args.batch, args.seq), generator=g, dtype=torch.int32)

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)  # fp32 files: both sides round them to bf16 on the GPU
        tokens = os.path.join(tmp, "tokens.bin")
        ids.numpy().tofile(tokens)
        out = subprocess.run([args.bench, tmp, tokens, str(args.batch), str(args.seq), str(args.warmup),
                              str(args.steps)], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            sys.exit(f"gpu_train_bench failed ({out.returncode})")
        ours = json.loads(out.stdout.strip().splitlines()[-1])

    # The peer: the whole model in bf16 on the GPU, fused AdamW, the same tokens.
    model = model.to(device="cuda", dtype=torch.bfloat16).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, fused=True)
    x = ids.long().cuda()
    times, first = [], None
    for s in range(args.warmup + args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if s == 0:
            first = loss.item()
        if s >= args.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    peer_tps = args.batch * args.seq / times[len(times) // 2]

    flops = ours["flops_per_token"]
    mfu = lambda tps: tps * flops / (args.peak_tflops * 1e12)
    fast_mamba = import_utils.is_mamba_2_ssm_available() if hasattr(import_utils, "is_mamba_2_ssm_available") else False
    result = {
        "config": args.config, "parameters": ours["parameters"], "batch": args.batch, "seq": args.seq,
        "nemokit_tokens_per_s": ours["tokens_per_s"], "nemokit_mfu": mfu(ours["tokens_per_s"]),
        "transformers_tokens_per_s": peer_tps, "transformers_mfu": mfu(peer_tps),
        "ratio": ours["tokens_per_s"] / peer_tps, "nemokit_first_loss": ours["first_loss"],
        "transformers_first_loss": first, "transformers_mamba_kernels": bool(fast_mamba),
        "nemokit_gpu_memory_gib": ours["gpu_memory_used_gib"],
    }
    print(f"{args.config}: {ours['parameters'] / 1e9:.2f}B parameters, batch {args.batch} x seq {args.seq}, "
          f"{flops / 1e9:.2f} GFLOP per token, peak {args.peak_tflops:g} TFLOP/s")
    print(f"nemokit       {ours['tokens_per_s']:10.0f} tokens/s  MFU {100 * result['nemokit_mfu']:5.1f}%  "
          f"first loss {ours['first_loss']:.4f}")
    print(f"transformers  {peer_tps:10.0f} tokens/s  MFU {100 * result['transformers_mfu']:5.1f}%  "
          f"first loss {first:.4f}  (torch {torch.__version__}, mamba_ssm kernels: {'yes' if fast_mamba else 'no'})")
    print(f"ratio nemokit / transformers: {result['ratio']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    if abs(ours["first_loss"] - first) > 0.02 * abs(first):
        sys.exit(f"first losses differ: nemokit {ours['first_loss']} vs transformers {first}")


if __name__ == "__main__":
    main()
