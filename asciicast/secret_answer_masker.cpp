#include "asciicast/secret_answer_masker.h"

#include "asciicast/terminal_tracker.h"

namespace castgate::asciicast {

void SecretAnswerMasker::mask_answer(std::string& out) {
  out += TerminalTracker::kMask;
  out += '\n';
  prompt_open_ = false;
}

void SecretAnswerMasker::hold(std::string_view lines) {
  if (held_.empty()) held_first_ = lines.find('\n') + 1;
  held_.append(lines);
}

void SecretAnswerMasker::release_all_but_first(std::string& out) {
  // The first line is what a program that asks for a secret later reads as the answer (`(echo
  // "$PW"; cat backup.tar) | ssh host sudo -S tar x`): it waits for the program to say something,
  // however much follows it; the rest is recorded now.
  if (held_first_ > kMaxLine + 1) {
    out += held_;
    held_.clear();
    return;
  }
  out.append(held_, held_first_);
  held_.resize(held_first_);
}

std::string SecretAnswerMasker::output(std::string_view bytes) {
  size_t nl = bytes.rfind('\n');
  if (nl != std::string_view::npos) {
    tail_.assign(bytes.substr(nl + 1));
  } else {
    tail_.append(bytes);
  }
  if (tail_.size() > kMaxLine) tail_.erase(0, tail_.size() - kMaxLine);
  std::string out;
  bool asks = !tail_.empty() && TerminalTracker::looks_like_secret_prompt(tail_);
  if (!held_.empty()) {
    if (asks && held_first_ <= kMaxLine + 1) {
      // Sent before the prompt came: the program reads the first held line as the answer.
      mask_answer(out);
      out.append(held_, held_first_);
    } else {
      out.swap(held_);
      prompt_open_ = asks;
    }
    held_.clear();
    return out;
  }
  // A line the user is in the middle of sending when the prompt appears is what the program will
  // read as the answer.
  if (asks && !partial_.empty()) partial_answers_ = true;
  prompt_open_ = asks;
  return out;
}

std::string SecretAnswerMasker::input(std::string_view bytes) {
  std::string out;
  while (!bytes.empty()) {
    if (!prompt_open_ && !masking_partial_ && (partial_.empty() || !partial_answers_)) {
      // No prompt is open (the usual case, and the only one in bulk uploads): all complete lines
      // are held at once, without going line by line.
      if (bytes.find('\n') != std::string_view::npos) {
        if (!partial_.empty()) {
          size_t first_nl = bytes.find('\n');
          partial_.append(bytes.substr(0, first_nl + 1));
          hold(partial_);
          partial_.clear();
          bytes.remove_prefix(first_nl + 1);
        }
        size_t last_nl = bytes.rfind('\n');
        if (last_nl != std::string_view::npos) {
          hold(bytes.substr(0, last_nl + 1));
          bytes.remove_prefix(last_nl + 1);
        }
        if (held_.size() > kMaxHeld) release_all_but_first(out);  // more than a few answers
        continue;
      }
    }
    // Whether a line answers the prompt is decided by its first byte: output that comes while it
    // is being typed does not change that.
    if (partial_.empty() && !masking_partial_) partial_answers_ = prompt_open_;
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      if (masking_partial_) {
        bytes = {};  // already recorded as the mask
        break;
      }
      partial_.append(bytes);
      if (partial_.size() > kMaxLine) {
        // Too long for a password: record it as it comes, unless it answers a prompt.
        release_all_but_first(out);
        if (partial_answers_) {
          out += TerminalTracker::kMask;
          masking_partial_ = true;
        } else {
          out += partial_;
        }
        partial_.clear();
      }
      break;
    }
    std::string_view rest = bytes.substr(0, nl + 1);
    bytes.remove_prefix(nl + 1);
    if (masking_partial_) {
      out += '\n';
      masking_partial_ = false;
      prompt_open_ = false;
      continue;
    }
    std::string line = std::move(partial_);
    partial_.clear();
    line.append(rest);
    if (partial_answers_) {
      out += held_;
      held_.clear();
      mask_answer(out);
    } else {
      hold(line);
    }
  }
  return out;
}

std::string SecretAnswerMasker::finish() {
  std::string out = std::move(held_);
  held_.clear();
  if (!partial_.empty()) out += partial_answers_ ? std::string(TerminalTracker::kMask) : partial_;
  partial_.clear();
  return out;
}

}  // namespace castgate::asciicast
