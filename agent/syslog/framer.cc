// Framer: RFC 6587 octet counting and newline framing, decided once per stream.
#include "agent/syslog/framer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace steward::agent::syslog {
namespace {

// RFC 6587 octet counts: at most this many digits (lengths below 1 GB).
constexpr size_t kMaxCountDigits = 9;

}  // namespace

Framer::State Framer::Begin(char c) {
  const bool digit = absl::ascii_isdigit(static_cast<unsigned char>(c));
  if (mode_ == Mode::kUndecided) {
    mode_ = framing_ == Framing::kDetect && digit ? Mode::kOctets : Mode::kLines;
  }
  return mode_ == Mode::kOctets && digit ? State::kCount : State::kLine;
}

bool Framer::Next(absl::string_view& in, std::string* frame) {
  while (!in.empty()) {
    switch (state_) {
      case State::kStart:
        if (in[0] == '\n' && mode_ != Mode::kLines) {
          in.remove_prefix(1);  // an empty line before the first frame, or between counted ones
          break;
        }
        state_ = Begin(in[0]);
        break;
      case State::kCount:
        ConsumeCount(in);
        break;
      case State::kOctets:
        if (ConsumeOctets(in) && Emit(frame)) return true;
        break;
      case State::kLine:
        if (ConsumeLine(in) && Emit(frame)) return true;
        break;
    }
  }
  return false;
}

void Framer::ConsumeCount(absl::string_view& in) {
  while (!in.empty() && digits_.size() < kMaxCountDigits &&
         absl::ascii_isdigit(static_cast<unsigned char>(in[0]))) {
    digits_.push_back(in[0]);
    in.remove_prefix(1);
  }
  if (in.empty()) return;  // more digits may follow
  if (in[0] == ' ') {
    in.remove_prefix(1);
    uint64_t count = 0;
    (void)absl::SimpleAtoi(digits_, &count);  // at most 9 digits: cannot fail
    digits_.clear();
    remaining_ = count;
    state_ = count == 0 ? State::kStart : State::kOctets;
    return;
  }
  // Not an octet count after all (a 10th digit, or no space): a line starting with digits.
  Append(digits_);
  digits_.clear();
  state_ = State::kLine;
}

bool Framer::ConsumeOctets(absl::string_view& in) {
  const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
  Append(in.substr(0, take));
  in.remove_prefix(take);
  remaining_ -= take;
  if (remaining_ > 0) return false;
  state_ = State::kStart;
  return true;
}

bool Framer::ConsumeLine(absl::string_view& in) {
  const size_t nl = in.find('\n');
  if (nl == absl::string_view::npos) {
    Append(in);
    in = absl::string_view();
    return false;
  }
  Append(in.substr(0, nl));
  in.remove_prefix(nl + 1);
  if (!cut_ && !frame_.empty() && frame_.back() == '\r') frame_.pop_back();
  state_ = State::kStart;
  return true;
}

bool Framer::Finish(std::string* frame) {
  if (state_ == State::kCount) Append(digits_);
  if (state_ == State::kLine && !cut_ && !frame_.empty() && frame_.back() == '\r') {
    frame_.pop_back();
  }
  digits_.clear();
  remaining_ = 0;
  state_ = State::kStart;
  return Emit(frame);
}

void Framer::Reset() {
  mode_ = Mode::kUndecided;
  state_ = State::kStart;
  truncated_ = false;
  frame_.clear();
  cut_ = false;
  digits_.clear();
  remaining_ = 0;
}

void Framer::Append(absl::string_view bytes) {
  const size_t room = max_ - frame_.size();
  if (bytes.size() > room) {
    cut_ = true;
    bytes = bytes.substr(0, room);
  }
  frame_.append(bytes.data(), bytes.size());
}

bool Framer::Emit(std::string* frame) {
  const bool has_frame = !frame_.empty();
  if (has_frame) {
    *frame = std::move(frame_);
    truncated_ = cut_;
  }
  frame_.clear();
  cut_ = false;
  return has_frame;
}

}  // namespace steward::agent::syslog
