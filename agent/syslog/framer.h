// Framer: cuts a syslog byte stream into frames. With Framing::kLines every frame ends
// at '\n' (a trailing '\r' is dropped). With Framing::kDetect the stream's framing is
// decided once, at its first frame (RFC 6587 3.4): a digit there means octet counting
// ("LEN SP MSG") for the whole stream, anything else newline framing. So a newline-
// framed message whose next line starts with "300 apples" is text, never a count. In an
// octet-counted stream a frame that does not start with a count is read up to '\n', so
// the stream recovers from a sender's mistake. A frame longer than max_bytes keeps its
// first max_bytes and is marked truncated(); the rest of it is skipped, so at most
// max_bytes are ever held. Empty frames are skipped.
//
//   Framer framer(64 * 1024, Framing::kDetect);   // one per TCP connection
//   absl::string_view in = bytes_just_read;
//   std::string frame;
//   while (framer.Next(in, &frame)) Deliver(frame, framer.truncated());
//
// Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace steward::agent::syslog {

enum class Framing {
  kLines,   // newline framing only (files)
  kDetect,  // RFC 6587: octet counting or newline framing, decided at the first frame
};

class Framer {
 public:
  Framer(size_t max_bytes, Framing framing) : max_(max_bytes), framing_(framing) {}

  // Consumes bytes from the front of `in` until a frame completes (true, the frame in
  // *frame) or `in` is used up (false).
  bool Next(absl::string_view& in, std::string* frame);
  // End of stream: the unterminated rest, if any, is the last frame.
  bool Finish(std::string* frame);
  // Whether the frame last returned was cut at max_bytes.
  bool truncated() const { return truncated_; }
  // Whether nothing of a frame is held (the stream is between frames).
  bool AtBoundary() const { return state_ == State::kStart; }
  // A new stream: nothing held, framing undecided.
  void Reset();

 private:
  enum class State { kStart, kCount, kOctets, kLine };
  enum class Mode { kUndecided, kLines, kOctets };

  // The state a frame starting with `c` begins in (deciding the mode at the first one).
  State Begin(char c);
  void ConsumeCount(absl::string_view& in);
  bool ConsumeOctets(absl::string_view& in);
  bool ConsumeLine(absl::string_view& in);
  void Append(absl::string_view bytes);
  bool Emit(std::string* frame);

  const size_t max_;
  const Framing framing_;
  Mode mode_ = Mode::kUndecided;
  State state_ = State::kStart;
  std::string frame_;
  bool cut_ = false;        // frame_ was cut at max_
  bool truncated_ = false;  // the frame last emitted was cut
  std::string digits_;      // kCount: the octet count so far
  uint64_t remaining_ = 0;  // kOctets: bytes of the frame still to come
};

}  // namespace steward::agent::syslog
