#include "asciicast/shell_syntax.h"

#include <algorithm>

namespace castgate::asciicast {

bool shell_metacharacter(char c) {
  switch (c) {
    case ';':
    case '&':
    case '|':
    case '$':
    case '`':
    case '<':
    case '>':
    case '(':
    case ')':
    case '{':
    case '}':
    case '\'':
    case '"':
    case '\\':
    case '#':
    case '!':
      return true;
    default:
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  }
}

bool plain_word(std::string_view w) {
  return !w.empty() && std::none_of(w.begin(), w.end(), [](char c) {
    return shell_metacharacter(c) || c == ' ' || c == '*' || c == '?' || c == '[' || c == ']';
  });
}

std::optional<std::vector<std::string_view>> simple_words(std::string_view exec) {
  for (char c : exec)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
  std::vector<std::string_view> words;
  size_t start = 0;
  for (;;) {
    size_t sp = exec.find(' ', start);
    std::string_view word =
        exec.substr(start, sp == std::string_view::npos ? exec.npos : sp - start);
    if (word.empty()) return std::nullopt;
    words.push_back(word);
    if (sp == std::string_view::npos) return words;
    start = sp + 1;
  }
}

}  // namespace castgate::asciicast
