// make_omni_chats: the tiny omni3 SFT's multimodal chats, from Debian's packages: Fashion-MNIST
// images ("What is in this image?"), scikit-learn's 8x8 digits ("Which digit is this?"), common
// words spoken by espeak-ng ("What word is spoken?": held-out words, and train words in a voice no
// train clip uses) and short videos of a digit drifting across
// the frame ("Which digit moves across the frame, and which way?").
// It also writes the omni3 vision RL tasks: the same questions on Fashion-MNIST images the chats
// never show, on train digits, and the sum of two digits.
// Usage: make_omni_chats FASHION_MNIST_DIR DIGITS_CSV_GZ DICT_FILE WORDNET_DIR OUT_DIR
// Writes OUT_DIR/{train,val,eval}.jsonl and rl-vision.jsonl with images/, audio/ and video/
// beside them and prints a one-line summary. Splits are hashes of the content (image bytes, words) and every other choice
// comes from seeded splitmix64, so the same inputs give the same files.
#include "omni_media.hpp"
#include "omni_sources.hpp"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;

// Fashion-MNIST: the first kFashionTrain training images (the tiny run needs no more), the next
// kFashionVal for validation loss, and the first kFashionEval test images for evaluation.
constexpr size_t kFashionTrain = 6000, kFashionVal = 200, kFashionEval = 1000;
// Digits, words: hash % 100 below kEvalPercent -> eval, below kValPercent -> val, else train.
constexpr uint64_t kEvalPercent = 20, kValPercent = 25;
// Words: the most sense-tagged 3..7-letter words, homophones (same espeak-ng phonemes) dropped.
constexpr size_t kWordCandidates = 420, kWords = 300, kMinWordLen = 3, kMaxWordLen = 7;
// Eval "speech_voice": kVoiceEvalWords train words (the first by a seeded hash) in kEvalVoice.
constexpr size_t kVoiceEvalWords = 60;
// Videos: frames of kVideoSize pixels, a digit scaled to kVideoDigit drifting across.
constexpr size_t kVideosTrain = 400, kVideosVal = 20, kVideosEval = 100;
constexpr int kVideoFrames = 8, kVideoSize = 32, kVideoDigit = 16, kVideoFps = 4;
constexpr int kStillSize = 28;  // digits are shown at Fashion-MNIST's size
// RL tasks: kFashionRl training images after those the chats use (none equal to a chat image),
// kDigitsRl train digits, kDigitSumsRl pairs of train digits.
constexpr size_t kFashionRl = 2000, kDigitsRl = 300, kDigitSumsRl = 300;
constexpr uint64_t kSaltDigits = 0x0a1e0001, kSaltWords = 0x0a1e0002, kSaltVideo = 0x0a1e0003,
                   kSaltShuffle = 0x0a1e0004, kSaltRl = 0x0a1e0005,
                   kSaltVoiceEval = 0x0a1e0006;

const char* const kFashionClasses[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                         "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
const char* const kImagePrompt = "<image>\nWhat is in this image?";
const char* const kDigitPrompt = "<image>\nWhich digit is this?";
const char* const kSpeechPrompt = "<audio>\nWhat word is spoken?";
const char* const kVideoPrompt = "<video>\nWhich digit moves across the frame, and which way?";
const char* const kDigitSumPrompt = "<image><image>\nWhat is the sum of these two digits? Answer with the number only.";
// Two readings of every train word for variety; val and the "speech" eval use the first.
const omni::SpeechClip kVoices[2] = {{"", "en-us", 175, ""}, {"", "en-us+f3", 140, ""}};
// The "speech_voice" eval's speaker: the same en-us pronunciation (the phonemes train taught) in
// a voice and at a rate no train clip has (variant m7: other formants and voicing, 120 wpm).
const omni::SpeechClip kEvalVoice = {"", "en-us+m7", 120, ""};

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (uint8_t(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

struct Record {
  std::string kind;    // fashion, digits, speech, video; eval also speech_voice
  std::string prompt;  // the user turn
  std::string answer;
  std::string media;   // "images":[...] / "audios":[...] / "videos":[...]
};

std::string chat_line(const Record& r) {
  return "{\"messages\":[{\"role\":\"user\",\"content\":" + quote(r.prompt) +
         "},{\"role\":\"assistant\",\"content\":" + quote(r.answer) + "}]," + r.media + "}";
}

std::string eval_line(const Record& r) {
  return "{\"kind\":" + quote(r.kind) + ",\"messages\":[{\"role\":\"user\",\"content\":" + quote(r.prompt) + "}]," +
         r.media + ",\"expected\":" + quote(r.answer) + "}";
}

std::string image_media(const std::string& rel) { return "\"images\":[" + quote(rel) + "]"; }

// One RL task: the prompt as a user turn, its images, and what scores the answer.
struct RlTask {
  std::string task;         // fashion, digits, digit_sum
  std::string prompt;
  std::vector<std::string> images;
  std::string answer;
  std::string environment;  // exact_match, arithmetic
};

std::string rl_line(const RlTask& t) {
  std::string images;
  for (const auto& rel : t.images) images += (images.empty() ? "" : ",") + quote(rel);
  return "{\"prompt\":[{\"role\":\"user\",\"content\":" + quote(t.prompt) + "}],\"images\":[" + images +
         "],\"expected_answer\":" + quote(t.answer) + ",\"environment\":" + quote(t.environment) +
         ",\"task\":" + quote(t.task) + "}";
}

struct Split {
  std::vector<Record> train, val, eval;
  std::vector<RlTask> rl;
};

enum class Part { train, val, eval };
Part part_of(uint64_t hash) {
  const uint64_t p = hash % 100;
  return p < kEvalPercent ? Part::eval : p < kValPercent ? Part::val : Part::train;
}
std::vector<Record>& records(Split& s, Part p) { return p == Part::train ? s.train : p == Part::val ? s.val : s.eval; }

std::string numbered(const char* prefix, size_t n, int width) {
  std::string digits = std::to_string(n);
  return prefix + std::string(size_t(std::max(0, width - int(digits.size()))), '0') + digits;
}

// --- Fashion-MNIST -------------------------------------------------------------------------------
void add_fashion(const std::string& dir, const fs::path& out, Split& split) {
  const omni::IdxImages test = omni::read_idx_pair(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", 10);
  const omni::IdxImages train =
      omni::read_idx_pair(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz", 10);
  if (test.rows != 28 || test.cols != 28 || train.rows != 28 || train.cols != 28)
    throw std::runtime_error(dir + ": Fashion-MNIST images must be 28x28");
  if (test.count < int64_t(kFashionEval) || train.count < int64_t(kFashionTrain + kFashionVal))
    throw std::runtime_error(dir + ": too few Fashion-MNIST images");
  const size_t px = 28 * 28;
  auto pixels = [&](const omni::IdxImages& set, size_t i) {
    return std::vector<uint8_t>(set.pixels.begin() + std::ptrdiff_t(i * px), set.pixels.begin() + std::ptrdiff_t((i + 1) * px));
  };
  std::set<std::vector<uint8_t>> held;  // eval images, then val: never taught
  for (size_t i = 0; i < kFashionEval; ++i) {
    const std::string rel = "images/" + numbered("fm_test_", i, 6) + ".png";
    omni::write_gray_png((out / rel).string(), 28, 28, pixels(test, i));
    held.insert(pixels(test, i));
    split.eval.push_back({"fashion", kImagePrompt, kFashionClasses[test.labels[i]], image_media(rel)});
  }
  // Val first from the end of the used range, so train stays the first kFashionTrain usable images.
  std::vector<size_t> usable;
  std::set<std::vector<uint8_t>> seen;
  for (size_t i = 0; i < size_t(train.count) && usable.size() < kFashionTrain + kFashionVal; ++i) {
    std::vector<uint8_t> img = pixels(train, i);
    if (held.count(img) || !seen.insert(img).second) continue;  // duplicates of eval or of each other
    usable.push_back(i);
  }
  for (size_t k = 0; k < usable.size(); ++k) {
    const size_t i = usable[k];
    const std::string rel = "images/" + numbered("fm_", i, 6) + ".png";
    omni::write_gray_png((out / rel).string(), 28, 28, pixels(train, i));
    (k < kFashionTrain ? split.train : split.val)
        .push_back({"fashion", kImagePrompt, kFashionClasses[train.labels[i]], image_media(rel)});
  }
  // RL: the training images after those, skipping any equal to a chat image or to each other.
  size_t taken = 0;
  for (size_t i = usable.empty() ? 0 : usable.back() + 1; i < size_t(train.count) && taken < kFashionRl; ++i) {
    std::vector<uint8_t> img = pixels(train, i);
    if (held.count(img) || !seen.insert(img).second) continue;
    const std::string rel = "images/" + numbered("rl_fm_", i, 6) + ".png";
    omni::write_gray_png((out / rel).string(), 28, 28, img);
    split.rl.push_back({"fashion", kImagePrompt, {rel}, kFashionClasses[train.labels[i]], "exact_match"});
    ++taken;
  }
  if (taken < kFashionRl) throw std::runtime_error(dir + ": too few Fashion-MNIST images for the RL tasks");
}

// --- digits ----------------------------------------------------------------------------------------
// 0..16 -> 0..255, nearest-neighbour upscaled from 8x8 to size x size.
std::vector<uint8_t> digit_image(const omni::Digit& d, int size) {
  std::vector<uint8_t> img(size_t(size) * size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const int v = d.pixels[size_t((y * 8 / size) * 8 + x * 8 / size)];
      img[size_t(y * size + x)] = uint8_t((v * 255 + 8) / 16);
    }
  return img;
}

uint64_t digit_hash(const omni::Digit& d) { return omni::splitmix64(omni::fnv1a64(d.pixels.data(), 64) ^ kSaltDigits); }

std::string digit_file(size_t i) { return "images/" + numbered("dg_", i, 4) + ".png"; }

void add_digits(const std::vector<omni::Digit>& digits, const fs::path& out, Split& split) {
  for (size_t i = 0; i < digits.size(); ++i) {
    const std::string rel = digit_file(i);
    omni::write_gray_png((out / rel).string(), kStillSize, kStillSize, digit_image(digits[i], kStillSize));
    records(split, part_of(digit_hash(digits[i])))
        .push_back({"digits", kDigitPrompt, std::to_string(digits[i].label), image_media(rel)});
  }
}

// RL: the chats' train digit images (add_digits writes them), asked alone and summed in pairs.
// The RL data prep holds out its own val and test tasks.
void add_digit_tasks(const std::vector<omni::Digit>& digits, Split& split) {
  std::vector<size_t> pool;
  for (size_t i = 0; i < digits.size(); ++i)
    if (part_of(digit_hash(digits[i])) == Part::train) pool.push_back(i);
  if (pool.size() < kDigitsRl) throw std::runtime_error("too few train digits for the RL tasks");
  // kDigitsRl different digits: the pool in seeded order.
  std::vector<size_t> order = pool;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[omni::splitmix64(kSaltRl + i) % i]);
  for (size_t k = 0; k < kDigitsRl; ++k)
    split.rl.push_back({"digits", kDigitPrompt, {digit_file(order[k])}, std::to_string(digits[order[k]].label), "exact_match"});
  uint64_t state = kSaltRl + 1;
  auto next = [&] { return omni::splitmix64(state++); };
  for (size_t k = 0; k < kDigitSumsRl; ++k) {
    const size_t a = pool[next() % pool.size()], b = pool[next() % pool.size()];
    split.rl.push_back({"digit_sum", kDigitSumPrompt, {digit_file(a), digit_file(b)},
                        std::to_string(digits[a].label + digits[b].label), "arithmetic"});
  }
}

// --- videos ----------------------------------------------------------------------------------------
// A digit drifting left to right (or back) across a blank frame, at a random height.
void add_videos(const std::vector<omni::Digit>& digits, const fs::path& out, Split& split) {
  std::map<Part, std::vector<size_t>> pools;
  for (size_t i = 0; i < digits.size(); ++i) pools[part_of(digit_hash(digits[i]))].push_back(i);
  uint64_t state = kSaltVideo;
  auto next = [&] { return omni::splitmix64(state++); };
  size_t id = 0;
  for (auto [part, count] : {std::pair{Part::train, kVideosTrain}, {Part::val, kVideosVal}, {Part::eval, kVideosEval}}) {
    const std::vector<size_t>& pool = pools[part];
    if (pool.empty()) throw std::runtime_error("no digits for the videos of a split");
    for (size_t v = 0; v < count; ++v, ++id) {
      const omni::Digit& d = digits[pool[next() % pool.size()]];
      const bool left_to_right = v % 2 == 0;
      const int top = int(next() % uint64_t(kVideoSize - kVideoDigit + 1));
      const std::vector<uint8_t> sprite = digit_image(d, kVideoDigit);
      const std::string folder = "video/" + numbered("v_", id, 4);
      fs::create_directories(out / folder);
      std::string frames;
      for (int k = 0; k < kVideoFrames; ++k) {
        const int travel = kVideoSize - kVideoDigit;
        const int step = (k * travel * 2 + (kVideoFrames - 1)) / (2 * (kVideoFrames - 1));  // round(k * travel / 7)
        const int left = left_to_right ? step : travel - step;
        std::vector<uint8_t> frame(size_t(kVideoSize) * kVideoSize, 0);
        for (int y = 0; y < kVideoDigit; ++y)
          for (int x = 0; x < kVideoDigit; ++x)
            frame[size_t((top + y) * kVideoSize + left + x)] = sprite[size_t(y * kVideoDigit + x)];
        const std::string rel = folder + "/" + numbered("frame_", size_t(k), 2) + ".png";
        omni::write_gray_png((out / rel).string(), kVideoSize, kVideoSize, frame);
        frames += (k ? "," : "") + quote(rel);
      }
      const std::string media = "\"videos\":[{\"frames\":[" + frames + "],\"fps\":" + std::to_string(kVideoFps) + "}]";
      records(split, part).push_back({"video", kVideoPrompt,
                                      std::to_string(d.label) + (left_to_right ? ", left to right" : ", right to left"),
                                      media});
    }
  }
}

// --- speech ----------------------------------------------------------------------------------------
void add_speech(const std::string& dict, const std::string& wordnet, const fs::path& out, Split& split) {
  std::vector<std::string> candidates = omni::common_words(dict, wordnet, kMinWordLen, kMaxWordLen);
  if (candidates.size() > kWordCandidates) candidates.resize(kWordCandidates);
  const std::vector<std::string> sounds =
      omni::phonemes(candidates, kVoices[0].voice, (out / "phonemes.txt").string());
  fs::remove(out / "phonemes.txt");
  std::vector<std::string> words;
  std::set<std::string> heard;
  for (size_t i = 0; i < candidates.size() && words.size() < kWords; ++i)
    if (!sounds[i].empty() && heard.insert(sounds[i]).second) words.push_back(candidates[i]);
  if (words.size() < kWords) throw std::runtime_error(dict + ": fewer than " + std::to_string(kWords) + " usable words");
  std::vector<omni::SpeechClip> clips;
  for (size_t i = 0; i < words.size(); ++i) {
    const Part part = part_of(omni::hash_of(words[i], kSaltWords));
    const int readings = part == Part::train ? 2 : 1;
    for (int r = 0; r < readings; ++r) {
      omni::SpeechClip c = kVoices[r];
      c.word = words[i];
      const std::string rel = "audio/" + numbered("w_", i, 4) + (r ? "_b" : "_a") + ".wav";
      c.path = (out / rel).string();
      clips.push_back(c);
      records(split, part).push_back({"speech", kSpeechPrompt, words[i], "\"audios\":[" + quote(rel) + "]"});
    }
  }
  // Eval "speech_voice": known (train) words, an unheard speaker; "speech" above: unheard words.
  std::vector<std::pair<uint64_t, size_t>> known;
  for (size_t i = 0; i < words.size(); ++i)
    if (part_of(omni::hash_of(words[i], kSaltWords)) == Part::train)
      known.push_back({omni::hash_of(words[i], kSaltVoiceEval), i});
  if (known.size() < kVoiceEvalWords)
    throw std::runtime_error("fewer than " + std::to_string(kVoiceEvalWords) + " train words for the speech_voice eval");
  std::sort(known.begin(), known.end());
  known.resize(kVoiceEvalWords);
  std::sort(known.begin(), known.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [hash, i] : known) {
    omni::SpeechClip c = kEvalVoice;
    c.word = words[i];
    const std::string rel = "audio/" + numbered("w_", i, 4) + "_c.wav";
    c.path = (out / rel).string();
    clips.push_back(c);
    split.eval.push_back({"speech_voice", kSpeechPrompt, words[i], "\"audios\":[" + quote(rel) + "]"});
  }
  omni::speak(clips, int(std::max(2u, std::thread::hardware_concurrency())));
}

void write_lines(const fs::path& path, const std::vector<Record>& rows, bool eval) {
  std::ofstream out(path, std::ios::binary);
  for (const Record& r : rows) out << (eval ? eval_line(r) : chat_line(r)) << '\n';
  out.flush();
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

template <class Row>
void shuffle(std::vector<Row>& v, uint64_t seed) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[omni::splitmix64(seed + i) % i]);
}

std::string counts(const std::vector<Record>& rows) {
  std::map<std::string, size_t> n;
  for (const Record& r : rows) ++n[r.kind];
  std::string s = std::to_string(rows.size()) + " (";
  for (const char* k : {"fashion", "digits", "speech", "video"})
    s += std::string(k == std::string("fashion") ? "" : ", ") + k + " " + std::to_string(n[k]);
  if (n.count("speech_voice")) s += ", speech_voice " + std::to_string(n["speech_voice"]);  // eval only
  return s + ")";
}

std::string rl_counts(const std::vector<RlTask>& rows) {
  std::map<std::string, size_t> n;
  for (const RlTask& t : rows) ++n[t.task];
  return std::to_string(rows.size()) + " (fashion " + std::to_string(n["fashion"]) + ", digits " +
         std::to_string(n["digits"]) + ", digit_sum " + std::to_string(n["digit_sum"]) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: make_omni_chats FASHION_MNIST_DIR DIGITS_CSV_GZ DICT_FILE WORDNET_DIR OUT_DIR\n";
    return 2;
  }
  try {
    const fs::path out = argv[5];
    for (const char* d : {"images", "audio", "video"}) fs::create_directories(out / d);
    // The espeak-ng processes run while this thread writes the images.
    Split split, speech;
    std::exception_ptr speech_error;
    {
      std::jthread speaking([&] {
        try {
          add_speech(argv[3], argv[4], out, speech);
        } catch (...) {
          speech_error = std::current_exception();
        }
      });
      add_fashion(argv[1], out, split);
      const std::vector<omni::Digit> digits = omni::read_digits_csv_gz(argv[2]);
      add_digits(digits, out, split);
      add_digit_tasks(digits, split);
      add_videos(digits, out, split);
    }
    if (speech_error) std::rethrow_exception(speech_error);
    for (auto part : {Part::train, Part::val, Part::eval})
      records(split, part).insert(records(split, part).end(), records(speech, part).begin(), records(speech, part).end());
    shuffle(split.train, kSaltShuffle);
    shuffle(split.val, kSaltShuffle + 1);
    write_lines(out / "train.jsonl", split.train, false);
    write_lines(out / "val.jsonl", split.val, false);
    write_lines(out / "eval.jsonl", split.eval, true);
    shuffle(split.rl, kSaltShuffle + 2);
    {
      std::ofstream rl(out / "rl-vision.jsonl", std::ios::binary);
      for (const RlTask& t : split.rl) rl << rl_line(t) << '\n';
      rl.flush();
      if (!rl) throw std::runtime_error((out / "rl-vision.jsonl").string() + ": cannot write");
    }
    std::cout << "train " << counts(split.train) << ", val " << counts(split.val) << ", eval " << counts(split.eval)
              << ", rl-vision " << rl_counts(split.rl) << '\n';
  } catch (const std::exception& e) {
    std::cerr << "make_omni_chats: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
