// A LoRA model's adapters in PEFT's layout for transformers' NemotronH (transformers 5):
// adapter_config.json + adapter_model.safetensors with tensors named
// base_model.model.<transformers module>.lora_{A,B}.weight, e.g.
// base_model.model.model.layers.1.mixer.q_proj.lora_A.weight.
// transformers stacks the routed experts of a layer into one parameter per projection
// (mixer.experts.up_proj [E, out, in]), which PEFT adapts through target_parameters with
// lora_A [rank*E, in] (expert e's rows e*rank..) and lora_B [out, rank*E] (expert e's
// columns e, e+E, ...); when both projections of a layer are adapted, PEFT nests the
// wrappers and the up projection's tensors sit under mixer.experts.base_layer. Experts
// without an adapter get zeros. PEFT refuses LoRA on Mamba's out_proj (its fused kernel
// reads the weight directly), so those adapters are left out and reported.
#pragma once
#include <string>
#include <vector>

#include "nemokit/runtime/model.hpp"

namespace nemokit::rt {

struct PeftExport {
  size_t tensors = 0;                  // written to adapter_model.safetensors
  std::vector<std::string> left_out;   // modules whose adapters PEFT cannot load
};

// Writes DIR.tmp, then renames it to DIR. Throws when the model has no LoRA adapters.
PeftExport save_peft_adapter(NemotronH& model, const std::string& dir);

}  // namespace nemokit::rt
