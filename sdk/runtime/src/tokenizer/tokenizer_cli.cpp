// `nemokit tokenizer train|encode|decode`: the command-line face of the tokenizer.

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "nemokit/runtime/tokenizer.hpp"

namespace nemokit::rt {
namespace {

constexpr const char* kUsage =
    "usage: nemokit tokenizer train --vocab-size N --out tokenizer.json [--special TOKEN ...]\n"
    "                               [--min-frequency N] [--threads N] FILES...\n"
    "       nemokit tokenizer encode --tokenizer tokenizer.json [FILE]   (ids per line; stdin without FILE)\n"
    "       nemokit tokenizer decode --tokenizer tokenizer.json [FILE]   (text per line of ids)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool parse_int(const std::string& s, int64_t& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Walks the arguments; options take the following word as their value.
class Args {
 public:
  explicit Args(const std::vector<std::string>& a) : a_(a) {}
  bool done() const { return i_ >= a_.size(); }
  const std::string& next() { return a_[i_++]; }
  std::string value_of(const std::string& option) {
    if (done()) throw UsageError(option + " needs a value");
    return next();
  }
  int64_t int_of(const std::string& option) {
    const std::string v = value_of(option);
    int64_t n = 0;
    if (!parse_int(v, n)) throw UsageError(option + " expects an integer, got \"" + v + "\"");
    return n;
  }

 private:
  const std::vector<std::string>& a_;
  size_t i_ = 1;  // args[0] is the subcommand
};

int run_train(const std::vector<std::string>& args) {
  Args it(args);
  BpeTrainOptions opt;
  std::string out;
  bool have_size = false;
  std::vector<std::filesystem::path> files;
  while (!it.done()) {
    const std::string& w = it.next();
    if (w == "--vocab-size") {
      const int64_t n = it.int_of(w);
      if (n <= 0 || n > INT32_MAX) throw UsageError("--vocab-size must be positive");
      opt.vocab_size = int32_t(n);
      have_size = true;
    } else if (w == "--out") {
      out = it.value_of(w);
    } else if (w == "--special") {
      opt.special_tokens.push_back(it.value_of(w));
    } else if (w == "--min-frequency") {
      opt.min_frequency = int32_t(it.int_of(w));
    } else if (w == "--threads") {
      opt.threads = int(it.int_of(w));
    } else if (w.starts_with("--")) {
      throw UsageError("unknown option " + w);
    } else {
      files.emplace_back(w);
    }
  }
  if (!have_size) throw UsageError("train needs --vocab-size");
  if (out.empty()) throw UsageError("train needs --out");
  if (files.empty()) throw UsageError("train needs at least one text file");
  const Tokenizer t = train_bpe(files, opt);
  t.save(out);
  std::cerr << "wrote " << out << " (" << t.vocab_size() << " tokens)\n";
  return 0;
}

struct IoArgs {
  std::string tokenizer;
  std::string input;  // empty: stdin
};

IoArgs parse_io(const std::vector<std::string>& args) {
  Args it(args);
  IoArgs io;
  while (!it.done()) {
    const std::string& w = it.next();
    if (w == "--tokenizer") {
      io.tokenizer = it.value_of(w);
    } else if (w.starts_with("--")) {
      throw UsageError("unknown option " + w);
    } else if (io.input.empty()) {
      io.input = w;
    } else {
      throw UsageError("only one input file may be given, got \"" + w + "\" too");
    }
  }
  if (io.tokenizer.empty()) throw UsageError(args[0] + " needs --tokenizer");
  return io;
}

std::vector<std::string> read_lines(const std::string& file) {
  std::ifstream f;
  std::istream* in = &std::cin;
  if (!file.empty()) {
    f.open(file, std::ios::binary);
    if (!f) throw std::runtime_error(file + ": cannot open: " + std::strerror(errno));
    in = &f;
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(*in, line);) lines.push_back(std::move(line));
  if (in->bad()) throw std::runtime_error((file.empty() ? "<stdin>" : file) + ": read error");
  return lines;
}

int run_encode(const std::vector<std::string>& args) {
  const IoArgs io = parse_io(args);
  const Tokenizer t = Tokenizer::load(io.tokenizer);
  const auto lines = read_lines(io.input);
  // Batches keep memory flat on large inputs while every core encodes.
  constexpr size_t kBatch = 1 << 14;
  std::string out;
  for (size_t b = 0; b < lines.size(); b += kBatch) {
    const size_t n = std::min(kBatch, lines.size() - b);
    const auto ids = t.encode_batch(std::span(lines).subspan(b, n));
    out.clear();
    for (const auto& row : ids) {
      for (size_t i = 0; i < row.size(); ++i) {
        if (i) out.push_back(' ');
        out += std::to_string(row[i]);
      }
      out.push_back('\n');
    }
    std::cout << out;
  }
  std::cout.flush();
  if (!std::cout) throw std::runtime_error("<stdout>: write error");
  return 0;
}

int run_decode(const std::vector<std::string>& args) {
  const IoArgs io = parse_io(args);
  const Tokenizer t = Tokenizer::load(io.tokenizer);
  const auto lines = read_lines(io.input);
  const std::string name = io.input.empty() ? "<stdin>" : io.input;
  std::vector<int32_t> ids;
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    ids.clear();
    std::istringstream words(lines[ln]);
    for (std::string w; words >> w;) {
      int64_t id = 0;
      if (!parse_int(w, id) || id < 0 || id >= t.vocab_size() || !t.id_to_token(int32_t(id)))
        throw std::runtime_error(name + ":" + std::to_string(ln + 1) + ": \"" + w +
                                 "\" is not a token id of " + io.tokenizer);
      ids.push_back(int32_t(id));
    }
    std::cout << t.decode(ids) << '\n';
  }
  std::cout.flush();
  if (!std::cout) throw std::runtime_error("<stdout>: write error");
  return 0;
}

}  // namespace

int tokenizer_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? 2 : 0;
  }
  // `tokenizer SUB --help` (or -h), unless it is the value of an option (--special -h).
  for (size_t i = 1; i < args.size(); ++i)
    if ((args[i] == "--help" || args[i] == "-h") && !args[i - 1].starts_with("--")) {
      std::cout << kUsage;
      return 0;
    }
  try {
    if (args[0] == "train") return run_train(args);
    if (args[0] == "encode") return run_encode(args);
    if (args[0] == "decode") return run_decode(args);
    throw UsageError("unknown subcommand \"" + args[0] + "\"");
  } catch (const UsageError& e) {
    std::cerr << "nemokit tokenizer: " << e.what() << " (see `nemokit tokenizer --help`)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "nemokit tokenizer: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace nemokit::rt
