// Framer: cuts a syslog byte stream into frames. RFC 6587 octet counting ("LEN SP MSG")
// when a frame starts with a digit and octet counting is on (TCP), else lines ended by
// '\n' (a trailing '\r' is dropped). A frame longer than max_bytes keeps its first
// max_bytes; the rest of it is skipped, so at most max_bytes are ever held. Empty
// frames are skipped.
//
//   Framer framer(64 * 1024, /*octet_counting=*/true);
//   absl::string_view in = bytes_just_read;
//   std::string frame;
//   while (framer.Next(in, &frame)) Deliver(frame);
//
// Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace steward::agent::syslog {

class Framer {
 public:
  Framer(size_t max_bytes, bool octet_counting)
      : max_(max_bytes), octet_counting_(octet_counting) {}

  // Consumes bytes from the front of `in` until a frame completes (true, the frame in
  // *frame) or `in` is used up (false).
  bool Next(absl::string_view& in, std::string* frame);
  // End of stream: the unterminated rest, if any, is the last frame.
  bool Finish(std::string* frame);
  // Whether nothing of a frame is held (the stream is between frames).
  bool AtBoundary() const { return state_ == State::kStart; }
  void Reset();

 private:
  enum class State { kStart, kCount, kOctets, kLine };

  void ConsumeCount(absl::string_view& in);
  bool ConsumeOctets(absl::string_view& in);
  bool ConsumeLine(absl::string_view& in);
  void Append(absl::string_view bytes);
  bool Emit(std::string* frame);

  const size_t max_;
  const bool octet_counting_;
  State state_ = State::kStart;
  std::string frame_;
  bool cut_ = false;        // frame_ was cut at max_
  std::string digits_;      // kCount: the octet count so far
  uint64_t remaining_ = 0;  // kOctets: bytes of the frame still to come
};

}  // namespace steward::agent::syslog
