// What the exec string of a file transfer may not hold: the recognisers of scp, git and rsync
// commands (scp_parser.h, transfer_follower.h) accept only what those clients send, never
// anything a shell would read as more than plain words.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace castgate::asciicast {

// Characters that make a POSIX shell do more than read a plain word: operators, redirections,
// quoting, expansion, comments, history, control characters and DEL. Space, globs and '=' are
// each caller's choice.
bool shell_metacharacter(char c);

// A word that a POSIX shell passes on as it is: not empty, no metacharacter, no space, no glob.
bool plain_word(std::string_view w);

// The words of `exec` exactly as a shell splits a simple command: separated by single spaces, none
// empty, and no control character anywhere (a newline would start a second command; nothing is
// trimmed). nullopt otherwise. The words themselves are each caller's to check (plain_word).
std::optional<std::vector<std::string_view>> simple_words(std::string_view exec);

}  // namespace castgate::asciicast
