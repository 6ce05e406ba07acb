#!/usr/bin/env python3
"""Reference fixture for the runtime's Nemotron-H: a small random NemotronH built with
transformers (all four layer kinds), saved in the Hugging Face layout, with inputs, logits,
loss and gradients dumped beside it. The C++ test (test_hf_fixture.cpp) loads the checkpoint
and must reproduce logits, loss and gradients.

    pip install torch transformers safetensors
    python3 tests/runtime/make_nemotronh_fixture.py            # writes tests/runtime/fixtures/
    python3 tests/runtime/make_nemotronh_fixture.py --check DIR # DIR: a checkpoint nemokit wrote

--check loads a nemokit-written checkpoint as a new user would, with AutoModelForCausalLM and
(when the folder has tokenizer files) AutoTokenizer, requires that every weight is used and none
is missing, and compares with what nemokit computed, from the reference file the C++ test writes
(DIR/reference.safetensors, or --reference FILE): logits (1e-4 relative), the mean loss over
input_ids/targets windows (1e-5 relative) and the ids of a sample text (exactly).
"""
import argparse
import os
import sys

try:
    import torch
    from safetensors.torch import save_file, load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer, NemotronHConfig, NemotronHForCausalLM
except ImportError as e:  # ctest reads 77 as "skipped": the peer is optional
    print(f"skipped: {e} (pip install torch transformers safetensors)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "nemotronh_tiny")

CONFIG = dict(
    hybrid_override_pattern="M*E-M",
    hidden_size=32,
    vocab_size=64,
    layer_norm_epsilon=1e-5,
    mamba_num_heads=4,
    mamba_head_dim=8,
    ssm_state_size=8,
    n_groups=2,
    conv_kernel=4,
    chunk_size=8,
    expand=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    intermediate_size=48,
    mlp_hidden_act="relu2",
    n_routed_experts=4,
    num_experts_per_tok=2,
    moe_intermediate_size=16,
    moe_shared_expert_intermediate_size=24,
    routed_scaling_factor=2.5,
    norm_topk_prob=True,
    tie_word_embeddings=False,
    initializer_range=0.1,
    time_step_min=1e-3,
    use_cache=False,
)


def our_name(hf_name):
    """transformers 5 parameter name -> Hub checkpoint name (backbone.*, one tensor per expert)."""
    return hf_name.replace("model.", "backbone.", 1) if hf_name.startswith("model.") else hf_name


def build():
    torch.manual_seed(0)
    config = NemotronHConfig(**CONFIG)
    config._attn_implementation = "eager"
    model = NemotronHForCausalLM(config).float()
    # Move every parameter and the router bias away from their neat initial values so each
    # path (norm weights, D, dt_bias, expert bias) is exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".D"):
                p.copy_(torch.randn_like(p))
            elif name.endswith("dt_bias"):
                p.copy_(torch.linspace(-4.0, 0.5, p.numel()))
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.05 * torch.randn_like(b))
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    model = build()
    model.train()
    model.save_pretrained(OUT, safe_serialization=True)

    B, T = 2, 20
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, CONFIG["vocab_size"], (B, T), generator=g)
    labels = input_ids.clone()
    labels[0, 5:8] = -100  # masked positions must not count
    out = model(input_ids=input_ids, labels=labels)
    out.loss.backward()

    # Our targets are the shifted labels: targets[t] = labels[t+1], the last one ignored.
    targets = torch.full_like(labels, -100)
    targets[:, :-1] = labels[:, 1:]
    ref = {
        "input_ids": input_ids.to(torch.int64).contiguous(),
        "targets": targets.to(torch.int64).contiguous(),
        "logits": out.logits.detach().float().reshape(B * T, -1).contiguous(),
        "loss": out.loss.detach().reshape(1).float(),
    }
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        n = our_name(name)
        if ".experts.up_proj" in n or ".experts.down_proj" in n:
            base, which = n.rsplit(".", 1)
            for e in range(p.shape[0]):
                ref[f"grad.{base}.{e}.{which}.weight"] = p.grad[e].float().contiguous()
        else:
            ref[f"grad.{n}"] = p.grad.float().contiguous()
    save_file(ref, os.path.join(HERE, "fixtures", "nemotronh_tiny_reference.safetensors"))
    print("loss", out.loss.item(), "tensors", len(ref))


def check(path, reference):
    ref = load_file(reference or os.path.join(path, "reference.safetensors"))
    model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, attn_implementation="eager")
    problems = {k: v for k, v in info.items() if v}
    if problems:
        print("loading problems:", problems)
        sys.exit(1)
    model.float().eval()
    failed = False
    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"]).logits.float()
    if "logits" in ref:
        err = ((logits.reshape(ref["logits"].shape) - ref["logits"]).abs().max() / ref["logits"].abs().max()).item()
        print(f"transformers loaded {path}: max relative logit difference {err:.3e}")
        failed |= not err < 1e-4
    if "loss" in ref:
        # nemokit's targets: next tokens, -100 where no loss is taken; the mean over the rest.
        targets = ref["targets"].reshape(-1)
        keep = targets != -100
        logp = torch.log_softmax(logits.reshape(targets.numel(), -1).double(), dim=-1)
        loss = -logp[keep].gather(1, targets[keep].unsqueeze(1)).mean().item()
        ours = ref["loss"].double().item()
        rel = abs(loss - ours) / abs(ours)
        print(f"transformers loss {loss:.9f} over {int(keep.sum())} tokens, nemokit {ours:.9f}: relative difference {rel:.3e}")
        failed |= not rel < 1e-5
    if os.path.exists(os.path.join(path, "tokenizer.json")):
        tok = AutoTokenizer.from_pretrained(path)
        if "sample_text" in ref:
            text = bytes(ref["sample_text"].tolist()).decode("utf-8")
            ids = tok(text, add_special_tokens=False)["input_ids"]
            same = ids == ref["sample_ids"].tolist()
            print(f"AutoTokenizer ({type(tok).__name__}) gives nemokit's {len(ids)} ids for the sample text: {same}")
            failed |= not same
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", help="a checkpoint folder written by nemokit")
    ap.add_argument("--reference", help="what nemokit computed (default: CHECK/reference.safetensors)")
    args = ap.parse_args()
    check(args.check, args.reference) if args.check else main()
