// `nemokit model export|import|lora-merge|adapter-export`: moving models between the training
// layout (fp32 Hub-named safetensors, LoRA adapters beside the base weights, optimizer state)
// and what the Hugging Face ecosystem loads. Every output folder is written as DIR.tmp and
// renamed into place.
#include <filesystem>
#include <iostream>
#include <optional>

#include "model_cli_options.hpp"
#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/peft_adapter.hpp"
#include "nemokit/runtime/tokenizer.hpp"

namespace nemokit::rt::cli {
namespace fs = std::filesystem;

namespace {

// The one positional folder and --out of a conversion command.
struct InOut {
  std::string in, out;
  Options opts;
};

InOut in_out(const std::vector<std::string>& args, const std::vector<std::string>& allowed, const char* what) {
  InOut io{"", "", Options(args, 1, allowed)};
  if (io.opts.positional.size() != 1 || !io.opts.has("--out"))
    throw UsageError(args[0] + " needs exactly one " + what + " and --out DIR");
  io.in = io.opts.positional[0];
  io.out = io.opts.get("--out");
  if (!fs::is_directory(io.in)) throw std::runtime_error(io.in + ": no such folder");
  if (!fs::exists(fs::path(io.in) / "config.json"))
    throw std::runtime_error(io.in + "/config.json: missing (not a model folder)");
  if (fs::weakly_canonical(io.in) == fs::weakly_canonical(io.out))
    throw UsageError("--out must differ from the input folder " + io.in);
  return io;
}

std::unique_ptr<NemotronH> load_lora_checkpoint(const std::string& dir) {
  if (!fs::exists(fs::path(dir) / "adapter_config.json"))
    throw std::runtime_error(dir + "/adapter_config.json: missing (not a LoRA checkpoint)");
  return load_pretrained(dir);
}

// tokenizer.json in the folder, else in the folder above (a training run keeps it at its
// root, above the step folders).
std::optional<fs::path> find_tokenizer(const fs::path& dir) {
  for (const fs::path& d : {dir, dir.parent_path()})
    if (fs::exists(d / "tokenizer.json")) return d;
  return std::nullopt;
}

// Copies the tokenizer files found for `source` into `dest`; writes a tokenizer_config.json
// naming the model's special tokens when the source has none.
void copy_tokenizer(const fs::path& source, const fs::path& dest, const NemotronHConfig& config) {
  auto from = find_tokenizer(source);
  if (!from) return;
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"})
    if (fs::exists(*from / name)) fs::copy_file(*from / name, dest / name, fs::copy_options::overwrite_existing);
  if (fs::exists(dest / "tokenizer_config.json")) return;
  const Tokenizer tok = Tokenizer::load(*from / "tokenizer.json");
  write_file_atomic(dest / "tokenizer_config.json", tokenizer_config_json(tok, config).dump(2) + "\n");
}

// save_pretrained into OUT.tmp, the tokenizer files beside it, then one rename to OUT.
void write_model_folder(NemotronH& model, const std::string& source, const std::string& out, DType dtype) {
  fs::path tmp = fresh_temp_dir(out);
  save_pretrained(model, tmp.string(), kDefaultShardBytes, dtype);  // writes tmp.tmp, renames to tmp
  copy_tokenizer(source, tmp, model.config());
  replace_dir_atomic(tmp, out);
}

int64_t parameter_count(NemotronH& model) {
  int64_t n = 0;
  for (Parameter* p : model.parameters()) n += p->value.numel();
  return n;
}

}  // namespace

int cmd_export(const std::vector<std::string>& args) {
  InOut io = in_out(args, {"--out", "--dtype"}, "CKPT_DIR");
  const std::string dtype_name = io.opts.has("--dtype") ? io.opts.get("--dtype") : "bf16";
  if (dtype_name != "bf16" && dtype_name != "fp32")
    throw UsageError("--dtype: '" + dtype_name + "' is not bf16 or fp32");
  auto model = load_pretrained(io.in);
  const bool merged = model->has_lora();
  if (merged) model->merge_lora();
  write_model_folder(*model, io.in, io.out, dtype_name == "bf16" ? DType::bf16 : DType::f32);
  std::cout << "wrote " << io.out << " (" << parameter_count(*model) << " parameters, " << dtype_name
            << (merged ? ", LoRA merged" : "") << ")\n";
  return 0;
}

int cmd_import(const std::vector<std::string>& args) {
  InOut io = in_out(args, {"--out"}, "HF_DIR");
  auto model = load_pretrained(io.in);  // bf16 or fp32; Hub or transformers 5 names
  write_model_folder(*model, io.in, io.out, DType::f32);
  std::cout << "wrote " << io.out << " (" << parameter_count(*model) << " parameters, fp32)\n";
  return 0;
}

int cmd_lora_merge(const std::vector<std::string>& args) {
  InOut io = in_out(args, {"--out"}, "CKPT_DIR");
  auto model = load_lora_checkpoint(io.in);
  model->merge_lora();
  write_model_folder(*model, io.in, io.out, DType::f32);
  std::cout << "wrote " << io.out << " (" << parameter_count(*model) << " parameters, fp32, LoRA merged)\n";
  return 0;
}

int cmd_adapter_export(const std::vector<std::string>& args) {
  InOut io = in_out(args, {"--out"}, "CKPT_DIR");
  auto model = load_lora_checkpoint(io.in);
  PeftExport report = save_peft_adapter(*model, io.out);
  std::cout << "wrote " << io.out << " (" << report.tensors << " tensors)\n";
  if (!report.left_out.empty())
    std::cerr << "nemokit model adapter-export: warning: " << report.left_out.size()
              << " Mamba out_proj adapters left out (PEFT cannot load them), e.g. " << report.left_out.front()
              << "; lora-merge keeps them\n";
  return 0;
}

}  // namespace nemokit::rt::cli
