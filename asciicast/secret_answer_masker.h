// Masks passwords on channels without a terminal. There is no echo to watch there, so the
// prompt is the only sign: when the program's latest output line looks like a password prompt
// (`sudo -S` prints "[sudo] password for alice: " on stderr), the next line the user sends is
// recorded as TerminalTracker::kMask. A password piped in before the prompt appears
// (`echo pw | ssh host sudo -S id`) is caught too: the user's latest complete line is held back
// from the record until the program answers, and masked if its answer is a password prompt.
// Everything held is bounded (one line and one partial line of at most kMaxLine bytes).
#pragma once

#include <string>
#include <string_view>

namespace castgate::asciicast {

class SecretAnswerMasker {
 public:
  static constexpr size_t kMaxLine = 4096;

  // Output from the program (stdout or stderr). Returns the held input that may be recorded
  // now (masked if this output asked for a secret); record it before this output.
  std::string output(std::string_view bytes);
  // Input from the user. Returns what may be recorded now.
  std::string input(std::string_view bytes);
  // The channel ended: everything still held.
  std::string finish();

 private:
  void mask_answer(std::string& out);  // a complete line answering the open prompt
  std::string tail_;              // the program's current output line (its last kMaxLine bytes)
  bool prompt_open_ = false;      // that line asks for a secret and has not been answered
  std::string held_;              // the user's latest complete line, waiting for the program
  std::string partial_;           // the user's line being sent (no newline yet)
  bool partial_answers_ = false;  // the line being sent began while a prompt was open
  bool masking_partial_ = false;  // a long partial line answering a prompt: masked as it goes
};

}  // namespace castgate::asciicast
