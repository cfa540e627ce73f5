// Masks passwords on channels without a terminal. There is no echo to watch there, so the
// prompt is the only sign: when the program's latest output line looks like a password prompt
// (`sudo -S` prints "[sudo] password for alice: " on stderr), the next line the program reads is
// recorded as TerminalTracker::kMask. Input sent before the prompt appears
// (`printf '%s\ny\n' "$PW" | ssh host sudo -S apt remove foo`) is caught too: every line the user
// sent since the program's last output is held back from the record until the program says
// something, and if that is a password prompt the first held line (the one it reads first) is
// masked and the rest released. Everything held is bounded (kMaxHeld bytes of complete lines and
// one partial line of at most kMaxLine bytes); past the bound it is recorded as it is, except the
// first held line (at most kMaxLine bytes), which waits for the program's next output or the end
// of the channel: a password piped ahead of a large upload is still masked.
#pragma once

#include <string>
#include <string_view>

namespace castgate::asciicast {

class SecretAnswerMasker {
 public:
  static constexpr size_t kMaxLine = 4096;
  static constexpr size_t kMaxHeld = 16384;

  // Output from the program (stdout or stderr). Returns the held input that may be recorded
  // now (its first line masked if this output asked for a secret); record it before this output.
  std::string output(std::string_view bytes);
  // Input from the user. Returns what may be recorded now.
  std::string input(std::string_view bytes);
  // The channel ended: everything still held.
  std::string finish();

 private:
  void mask_answer(std::string& out);  // a complete line answering the open prompt
  void hold(std::string_view lines);   // complete lines, nothing asked: wait for the program
  void release_all_but_first(std::string& out);  // past the bound
  std::string tail_;              // the program's current output line (its last kMaxLine bytes)
  bool prompt_open_ = false;      // that line asks for a secret and has not been answered
  std::string held_;              // complete lines sent since the program's last output
  size_t held_first_ = 0;         // the length of the first of them (with its newline)
  std::string partial_;           // the user's line being sent (no newline yet)
  bool partial_answers_ = false;  // the line being sent began while a prompt was open
  bool masking_partial_ = false;  // a long partial line answering a prompt: masked as it goes
};

}  // namespace castgate::asciicast
