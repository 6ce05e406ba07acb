#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/data/gpt_dataset.hpp"
#include "nemokit/runtime/json_file.hpp"
namespace nemokit::rt {
namespace {

// FNV-1a: a stable text hash for the fingerprint (std::hash differs between libraries).
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

nlohmann::json SamplerPosition::to_json() const {
  return {{"sample", sample}, {"per_dataset", per_dataset}, {"fingerprint", fingerprint}};
}

SamplerPosition SamplerPosition::from_json(const nlohmann::json& j, const std::string& origin) {
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key))
      throw std::invalid_argument(origin + ": sampler position lacks key \"" + key + "\"");
    return j.at(key);
  };
  SamplerPosition p;
  const auto& sample = need("sample");
  if (!sample.is_number_unsigned() && !(sample.is_number_integer() && sample.get<int64_t>() >= 0))
    throw std::invalid_argument(origin + ": key \"sample\" must be a non-negative integer");
  p.sample = sample.get<uint64_t>();
  const auto& per = need("per_dataset");
  if (!per.is_array()) throw std::invalid_argument(origin + ": key \"per_dataset\" must be an array");
  for (const auto& v : per) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      throw std::invalid_argument(origin + ": key \"per_dataset\" must hold non-negative integers");
    p.per_dataset.push_back(v.get<uint64_t>());
  }
  const auto& fp = need("fingerprint");
  if (!fp.is_string()) throw std::invalid_argument(origin + ": key \"fingerprint\" must be a string");
  p.fingerprint = fp.get<std::string>();
  return p;
}

uint64_t BlendedSampler::samples_per_epoch() const {
  uint64_t n = 0;
  for (const auto& c : components_) n += c.dataset->samples_per_epoch();
  return n;
}

BlendedSampler::BlendedSampler(std::vector<BlendComponent> components) : components_(std::move(components)) {
  if (components_.empty()) throw std::invalid_argument("blended sampler: no datasets");
  double total = 0;
  for (const auto& c : components_) {
    if (!c.dataset) throw std::invalid_argument("blended sampler: a component has no dataset");
    if (!(c.weight >= 0) || !std::isfinite(c.weight))
      throw std::invalid_argument(c.dataset->data().prefix().string() + ": blend weight must be >= 0");
    total += c.weight;
  }
  if (!(total > 0)) throw std::invalid_argument("blended sampler: the weights sum to 0");
  seq_length_ = components_[0].dataset->seq_length();
  std::string identity = "seq_length=" + std::to_string(seq_length_);
  for (const auto& c : components_) {
    if (c.dataset->seq_length() != seq_length_)
      throw std::invalid_argument(c.dataset->data().prefix().string() + ": seq_length differs within a blend");
    weights_.push_back(c.weight / total);
    char w[32];
    std::snprintf(w, sizeof w, "%.17g", weights_.back());
    // The file name and counts identify the data without tying it to where it is mounted.
    const auto& d = c.dataset->data();
    identity += ";" + d.prefix().filename().string() + ":" + std::to_string(d.sequence_count()) + ":" +
                std::to_string(d.total_tokens()) + ":seed=" + std::to_string(c.dataset->seed()) + ":w=" + w;
  }
  position_.per_dataset.assign(components_.size(), 0);
  position_.fingerprint = hex64(fnv1a(identity));
}

size_t BlendedSampler::choose() const {
  // Megatron's rule: the largest lag between the weighted target and what was taken wins.
  const double n = std::max(static_cast<double>(position_.sample), 1.0);
  size_t best = 0;
  double best_error = weights_[0] * n - static_cast<double>(position_.per_dataset[0]);
  for (size_t d = 1; d < weights_.size(); ++d) {
    const double error = weights_[d] * n - static_cast<double>(position_.per_dataset[d]);
    if (error > best_error) {
      best_error = error;
      best = d;
    }
  }
  return best;
}

size_t BlendedSampler::next(std::span<int32_t> out) {
  const size_t d = choose();
  components_[d].dataset->sample(position_.per_dataset[d], out);
  ++position_.per_dataset[d];
  ++position_.sample;
  return d;
}

std::vector<int32_t> BlendedSampler::next_batch(size_t count) {
  const size_t width = static_cast<size_t>(seq_length_) + 1;
  std::vector<int32_t> out(count * width);
  for (size_t s = 0; s < count; ++s) next(std::span<int32_t>(out).subspan(s * width, width));
  return out;
}

void BlendedSampler::restore(const SamplerPosition& p) {
  if (p.fingerprint != position_.fingerprint)
    throw std::invalid_argument("sampler position was saved for other data or settings (fingerprint " +
                                p.fingerprint + ", this data " + position_.fingerprint + ")");
  if (p.per_dataset.size() != components_.size())
    throw std::invalid_argument("sampler position has " + std::to_string(p.per_dataset.size()) +
                                " dataset counters, the blend has " + std::to_string(components_.size()));
  uint64_t sum = 0;
  for (uint64_t c : p.per_dataset) sum += c;
  if (sum != p.sample)
    throw std::invalid_argument("sampler position is inconsistent: counters sum to " + std::to_string(sum) +
                                ", sample is " + std::to_string(p.sample));
  position_ = p;
}

std::vector<BlendEntry> read_blend_split(const std::filesystem::path& blend_json, const std::string& split) {
  std::ifstream in(blend_json);
  if (!in) throw std::runtime_error(blend_json.string() + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(blend_json.string() + ": not valid JSON: " + json_error_text(e));
  }
  if (!j.is_object() || !j.contains(split))
    throw std::runtime_error(blend_json.string() + ": no key \"" + split + "\"");
  const auto& list = j.at(split);
  if (!list.is_array() || list.size() % 2 != 0)
    throw std::runtime_error(blend_json.string() + ": key \"" + split +
                             "\" must be an array of weight, prefix pairs");
  std::vector<BlendEntry> out;
  for (size_t i = 0; i < list.size(); i += 2) {
    const auto& w = list[i];
    const auto& p = list[i + 1];
    double weight = 0;
    if (w.is_number()) {
      weight = w.get<double>();
    } else if (w.is_string()) {  // Megatron's CLI form keeps weights as strings
      try {
        weight = std::stod(w.get<std::string>());
      } catch (const std::exception&) {
        throw std::runtime_error(blend_json.string() + ": key \"" + split + "\"[" + std::to_string(i) +
                                 "] is not a number");
      }
    } else {
      throw std::runtime_error(blend_json.string() + ": key \"" + split + "\"[" + std::to_string(i) +
                               "] must be a weight");
    }
    if (!p.is_string())
      throw std::runtime_error(blend_json.string() + ": key \"" + split + "\"[" + std::to_string(i + 1) +
                               "] must be a dataset prefix string");
    std::filesystem::path prefix = p.get<std::string>();
    if (prefix.is_relative()) prefix = blend_json.parent_path() / prefix;
    out.push_back({weight, prefix});
  }
  if (out.empty()) throw std::runtime_error(blend_json.string() + ": key \"" + split + "\" is empty");
  return out;
}

BlendedSampler open_blended_sampler(const std::vector<BlendEntry>& entries, int64_t seq_length, uint64_t seed,
                                    bool shuffle) {
  std::vector<BlendComponent> parts;
  for (size_t k = 0; k < entries.size(); ++k) {
    auto data = IndexedDataset::open(entries[k].prefix);
    parts.push_back({std::make_shared<GptDataset>(std::move(data), seq_length, mix_seed(seed, k), shuffle),
                     entries[k].weight});
  }
  return BlendedSampler(std::move(parts));
}

}  // namespace nemokit::rt
