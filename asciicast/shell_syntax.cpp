#include "asciicast/shell_syntax.h"

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

}  // namespace castgate::asciicast
