#!/usr/bin/env python3
"""Loads an adapter written by `nemokit model adapter-export` with PyPI peft onto transformers'
NemotronH and compares the logits with nemokit's logits of the same adapted model.

    python3 tests/runtime/check_peft_adapter.py DIR

DIR (written by runtime_model_convert.PeftAdapterForTheTransformersCheck):
    base/                    the base model (config.json + model.safetensors)
    adapter/                 adapter_config.json + adapter_model.safetensors
    reference.safetensors    input_ids and nemokit's logits with the adapters applied

Every tensor of the adapter file must land in the PEFT model under the same name with the
same values, and the logits must agree. Exits 77 (skipped) without torch, transformers or peft.
"""
import os
import sys

try:
    import torch
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import NemotronHForCausalLM
except ImportError as e:  # ctest reads 77 as "skipped": the peer is optional
    print(f"skipped: {e} (pip install torch transformers peft)")
    sys.exit(77)


def main(path):
    ref = load_file(os.path.join(path, "reference.safetensors"))
    adapter_dir = os.path.join(path, "adapter")
    stored = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))

    base = NemotronHForCausalLM.from_pretrained(os.path.join(path, "base"), attn_implementation="eager")
    base.float().eval()
    with torch.no_grad():
        base_logits = base(input_ids=ref["input_ids"]).logits.reshape(ref["logits"].shape).clone()
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()

    # The names PEFT saves for this model are exactly the names in the file, with the values we wrote.
    loaded = get_peft_model_state_dict(model)
    missing = sorted(set(stored) - set(loaded))
    extra = sorted(set(loaded) - set(stored))
    if missing or extra:
        print(f"adapter tensors not loaded by peft: {missing}; peft tensors not in the file: {extra}")
        return 1
    for name, t in stored.items():
        if not torch.equal(loaded[name].float().cpu(), t.float()):
            print(f"{name}: peft holds other values than the file")
            return 1

    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"]).logits.reshape(ref["logits"].shape)
    scale = ref["logits"].abs().max()
    err = ((logits - ref["logits"]).abs().max() / scale).item()
    moved = ((base_logits - ref["logits"]).abs().max() / scale).item()
    print(f"peft {getattr(sys.modules['peft'], '__version__', '?')} loaded {len(stored)} adapter tensors; "
          f"max relative logit difference to nemokit {err:.3e} (the adapters move the logits by {moved:.3e})")
    if moved < 1e-3:
        print("the adapters barely change the logits: the comparison would prove nothing")
        return 1
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
