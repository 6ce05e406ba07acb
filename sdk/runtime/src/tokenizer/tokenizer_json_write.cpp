// Writing a tokenizer back out: the JSON document, saved atomically.

#include "nemokit/runtime/atomic_file.hpp"
#include "tokenizer_impl.hpp"

namespace nemokit::rt {

std::string Tokenizer::to_json() const { return impl_->json.dump(2, ' ', false) + "\n"; }

void Tokenizer::save(const std::filesystem::path& path) const {
  write_file_atomic(path, to_json());
}

}  // namespace nemokit::rt
