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

}  // namespace castgate::asciicast
