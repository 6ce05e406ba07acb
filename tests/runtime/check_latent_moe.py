#!/usr/bin/env python3
"""transformers' check of a LatentMoE + MTP checkpoint that nemokit wrote
(test_super3_layers.cpp, CheckpointKeepsLatentMoeAndMtp): transformers' NemotronH builds its
LatentMoE from moe_latent_size, loads fc1_latent_proj/fc2_latent_proj and the experts with no
missing key, skips the mtp.* weights (it has no MTP layers: _keys_to_ignore_on_load_unexpected),
and gives nemokit's logits (1e-4 relative) for the input ids in DIR/reference.safetensors.

    python3 tests/runtime/check_latent_moe.py DIR
"""
import sys

try:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
except ImportError as e:  # ctest reads 77 as "skipped": the peer is optional
    print(f"skipped: {e} (pip install torch transformers safetensors)")
    sys.exit(77)


def main(folder):
    # eager: the per-expert loop of the reference (grouped_mm wants 16-byte strides, which a
    # 6-wide latent test model lacks)
    model, info = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, output_loading_info=True, attn_implementation="eager", experts_implementation="eager"
    )
    if info["missing_keys"]:
        sys.exit(f"transformers reports missing weights: {sorted(info['missing_keys'])}")
    names = dict(model.named_parameters())
    latent = [n for n in names if "fc1_latent_proj" in n or "fc2_latent_proj" in n]
    if not latent:
        sys.exit("transformers built no latent projection from this config.json")
    ref = load_file(f"{folder}/reference.safetensors")
    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"]).logits[0].float()
    want = ref["logits"].float().reshape(logits.shape)
    err = ((logits - want).abs().max() / want.abs().max()).item()
    print(f"{len(latent)} latent projections loaded; max relative logit difference {err:.2e}")
    if err > 1e-4:
        sys.exit(f"logits differ from nemokit's by {err:.2e} (relative)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
