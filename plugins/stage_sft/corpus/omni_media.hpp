// Writing the omni chat data's media: 8-bit gray PNGs (libpng) and spoken words as 16-bit WAV
// (the espeak-ng program, several at once).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace omni {

// width x height gray bytes, row-major, to path; throws naming the path on failure.
void write_gray_png(const std::string& path, int width, int height, const std::vector<uint8_t>& gray);

struct SpeechClip {
  std::string word;
  std::string voice;  // espeak-ng -v
  int speed = 175;    // espeak-ng -s, words per minute
  std::string path;   // the WAV to write
};
// Runs `espeak-ng -v VOICE -s SPEED -w PATH WORD` for every clip, `jobs` processes at a time, and
// checks each WAV (RIFF/WAVE, 16-bit PCM, mono, some samples); throws naming the clip otherwise.
void speak(const std::vector<SpeechClip>& clips, int jobs);

// espeak-ng's phonemes (-x) for each word, in order, from one espeak-ng process.
std::vector<std::string> phonemes(const std::vector<std::string>& words, const std::string& voice,
                                  const std::string& scratch_file);

}  // namespace omni
