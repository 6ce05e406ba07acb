#include "omni_media.hpp"

#include <png.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

extern char** environ;

namespace omni {

void write_gray_png(const std::string& path, int width, int height, const std::vector<uint8_t>& gray) {
  if (gray.size() != size_t(width) * size_t(height)) throw std::runtime_error(path + ": internal: wrong pixel count");
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = png_uint_32(width);
  image.height = png_uint_32(height);
  image.format = PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&image, path.c_str(), 0, gray.data(), width, nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    throw std::runtime_error(path + ": cannot write PNG: " + message);
  }
}

namespace {

uint32_t le32(const std::string& s, size_t at) {
  return uint32_t(uint8_t(s[at])) | uint32_t(uint8_t(s[at + 1])) << 8 | uint32_t(uint8_t(s[at + 2])) << 16 |
         uint32_t(uint8_t(s[at + 3])) << 24;
}
uint16_t le16(const std::string& s, size_t at) { return uint16_t(uint8_t(s[at]) | uint8_t(s[at + 1]) << 8); }

// A 16-bit PCM mono WAV with at least one sample (chunks walked, not assumed at fixed offsets).
void check_wav(const SpeechClip& clip) {
  std::ifstream in(clip.path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& what) {
    throw std::runtime_error("espeak-ng wrote a bad WAV for '" + clip.word + "' (" + clip.path + "): " + what);
  };
  if (s.size() < 12 || s.compare(0, 4, "RIFF") != 0 || s.compare(8, 4, "WAVE") != 0) bad("not RIFF/WAVE");
  bool fmt_ok = false;
  for (size_t at = 12; at + 8 <= s.size();) {
    const std::string id = s.substr(at, 4);
    const uint32_t size = le32(s, at + 4);
    if (id == "fmt " && size >= 16 && at + 8 + 16 <= s.size()) {
      if (le16(s, at + 8) != 1 || le16(s, at + 10) != 1 || le16(s, at + 22) != 16) bad("not 16-bit PCM mono");
      fmt_ok = true;
    }
    if (id == "data") {
      if (!fmt_ok) bad("data before fmt");
      if (size == 0 || size > s.size() - at - 8) bad("data chunk of " + std::to_string(size) + " bytes");
      return;
    }
    at += 8 + size + (size & 1);
  }
  bad("no data chunk");
}

pid_t spawn(const SpeechClip& c) {
  const std::string speed = std::to_string(c.speed);
  std::vector<std::string> args = {"espeak-ng", "-v", c.voice, "-s", speed, "-w", c.path, "--", c.word};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (int e = posix_spawnp(&pid, "espeak-ng", nullptr, nullptr, argv.data(), environ))
    throw std::runtime_error(std::string("cannot run espeak-ng: ") + std::strerror(e) + " (install espeak-ng)");
  return pid;
}

}  // namespace

void speak(const std::vector<SpeechClip>& clips, int jobs) {
  std::map<pid_t, size_t> running;
  size_t next = 0;
  std::string failure;
  while (next < clips.size() || !running.empty()) {
    while (failure.empty() && next < clips.size() && int(running.size()) < std::max(1, jobs)) {
      running[spawn(clips[next])] = next;
      ++next;
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const SpeechClip& c = clips[it->second];
    running.erase(it);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      if (failure.empty()) failure = "espeak-ng failed for '" + c.word + "' (" + c.path + ")";
      continue;
    }
    if (failure.empty()) check_wav(c);
  }
  if (!failure.empty()) throw std::runtime_error(failure);
}

std::vector<std::string> phonemes(const std::vector<std::string>& words, const std::string& voice,
                                  const std::string& scratch_file) {
  {
    std::ofstream out(scratch_file);
    for (const auto& w : words) out << w << ".\n";  // one clause, so one line of phonemes, per word
    if (!out) throw std::runtime_error(scratch_file + ": cannot write");
  }
  // Words are a-z only and the paths ours: nothing here needs shell quoting beyond the quotes.
  const std::string command = "espeak-ng -q -x -v '" + voice + "' -f '" + scratch_file + "'";
  FILE* p = popen(command.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run espeak-ng (install espeak-ng)");
  std::vector<std::string> lines;
  std::string line;
  for (int ch; (ch = std::fgetc(p)) != EOF;) {
    if (ch == '\n') {
      size_t b = line.find_first_not_of(' ');
      lines.push_back(b == std::string::npos ? std::string() : line.substr(b));
      line.clear();
    } else {
      line += char(ch);
    }
  }
  const int status = pclose(p);
  if (status != 0) throw std::runtime_error("espeak-ng -x failed (install espeak-ng)");
  if (lines.size() != words.size())
    throw std::runtime_error("espeak-ng -x gave " + std::to_string(lines.size()) + " lines of phonemes for " +
                             std::to_string(words.size()) + " words");
  return lines;
}

}  // namespace omni
