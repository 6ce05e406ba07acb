#include "pre_tokenizer.hpp"

namespace nemokit::rt::tok {
namespace {

struct Segment {
  size_t begin, end;
  bool is_match;
};

// Folds matched and unmatched segments into pieces the way Hugging Face's Split does, so that
// every behavior cuts the text at the same places.
void fold_segments(const std::vector<Segment>& segs, SplitBehavior behavior,
                   std::vector<std::pair<size_t, size_t>>& pieces) {
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& s : segs) pieces.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::Removed:
      for (const auto& s : segs)
        if (!s.is_match) pieces.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::MergedWithPrevious:
      for (const auto& s : segs) {
        if (s.is_match && !previous_match && !pieces.empty())
          pieces.back().second = s.end;
        else
          pieces.emplace_back(s.begin, s.end);
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::MergedWithNext: {
      std::vector<std::pair<size_t, size_t>> rev;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->is_match && !previous_match && !rev.empty())
          rev.back().first = it->begin;
        else
          rev.emplace_back(it->begin, it->end);
        previous_match = it->is_match;
      }
      pieces.insert(pieces.end(), rev.rbegin(), rev.rend());
      break;
    }
    case SplitBehavior::Contiguous:
      for (const auto& s : segs) {
        if (s.is_match == previous_match && !pieces.empty())
          pieces.back().second = s.end;
        else
          pieces.emplace_back(s.begin, s.end);
        previous_match = s.is_match;
      }
      break;
  }
}

}  // namespace

void PreTokenizer::add_split(std::shared_ptr<const RegexSplitter> regex, SplitBehavior behavior,
                             bool invert) {
  steps_.push_back(Step{std::move(regex), behavior, invert});
}

void PreTokenizer::add_prefix_space() { steps_.push_back(Step{}); }

void PreTokenizer::apply(const Step& step, std::string_view piece,
                         std::vector<std::string_view>& out, std::deque<std::string>& storage) {
  if (!step.regex) {
    if (!piece.empty() && piece.front() == ' ') {
      out.push_back(piece);
    } else {
      storage.push_back(" " + std::string(piece));
      out.push_back(storage.back());
    }
    return;
  }
  size_t begin = 0, end = 0, pos = 0;
  // The common case (Isolated, not inverted) emits pieces straight from the match loop.
  if (step.behavior == SplitBehavior::Isolated && !step.invert) {
    while (step.regex->next_match(piece, pos, begin, end)) {
      if (begin > pos) out.push_back(piece.substr(pos, begin - pos));
      out.push_back(piece.substr(begin, end - begin));
      pos = end;
    }
    if (pos < piece.size()) out.push_back(piece.substr(pos));
    return;
  }
  std::vector<Segment> segs;
  while (step.regex->next_match(piece, pos, begin, end)) {
    if (begin > pos) segs.push_back({pos, begin, step.invert});
    segs.push_back({begin, end, !step.invert});
    pos = end;
  }
  if (pos < piece.size()) segs.push_back({pos, piece.size(), step.invert});
  std::vector<std::pair<size_t, size_t>> cuts;
  fold_segments(segs, step.behavior, cuts);
  for (auto [b, e] : cuts)
    if (e > b) out.push_back(piece.substr(b, e - b));
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out,
                         std::deque<std::string>& storage) const {
  if (text.empty()) return;
  if (steps_.empty()) {
    out.push_back(text);
    return;
  }
  if (steps_.size() == 1) {
    apply(steps_[0], text, out, storage);
    return;
  }
  std::vector<std::string_view> current{text}, next;
  for (const auto& step : steps_) {
    next.clear();
    for (auto piece : current) apply(step, piece, next, storage);
    current.swap(next);
  }
  out.insert(out.end(), current.begin(), current.end());
}

}  // namespace nemokit::rt::tok
