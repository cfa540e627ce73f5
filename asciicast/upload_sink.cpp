#include "asciicast/upload_sink.h"

#include <algorithm>
#include <array>
#include <vector>

#include "asciicast/shell_syntax.h"
#include "common/text.h"

namespace castgate::asciicast {
namespace {

using Words = std::vector<std::string_view>;

// A destination that is a file or directory somewhere, not a device, a kernel interface or a
// path bash turns into a network connection (`> /dev/tcp/HOST/PORT`), and nothing a shell could
// expand (zsh's `=cmd`, `~user`): letters, digits and . _ / + - , @ % : only. Anything else is
// recorded in full.
bool file_path(std::string_view path) {
  if (path.empty() || path[0] == '-') return false;
  for (char c : path)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          std::string_view("._/+-,@%:").find(c) != std::string_view::npos))
      return false;
  for (std::string_view special : {"/dev", "/proc", "/sys", "//"})
    if (starts_with(path, special)) return false;
  for (std::string_view odd : {"//", "/./", "/../"})
    if (path.find(odd) != std::string_view::npos) return false;
  return true;
}

// `cat > PATH`, `cat >> PATH`, `cat >PATH`, `cat - > PATH`.
std::optional<UploadSink> cat_sink(const Words& w) {
  size_t i = 1;
  if (i < w.size() && w[i] == "-") ++i;
  if (i >= w.size()) return std::nullopt;
  std::string_view redirect = w[i];
  std::string_view path;
  if (redirect == ">" || redirect == ">>") {
    if (i + 2 != w.size()) return std::nullopt;
    path = w[i + 1];
  } else {
    if (i + 1 != w.size()) return std::nullopt;
    size_t arrows = starts_with(redirect, ">>") ? 2 : starts_with(redirect, ">") ? 1 : 0;
    if (arrows == 0) return std::nullopt;
    path = redirect.substr(arrows);
  }
  if (!file_path(path)) return std::nullopt;
  return UploadSink{"cat", std::string(path)};
}

// `dd of=PATH` with block sizes, status and flags; no `if=` (the input would not be stdin).
std::optional<UploadSink> dd_sink(const Words& w) {
  static constexpr std::array<std::string_view, 7> kOperands = {"bs",   "ibs",   "obs",  "status",
                                                                "conv", "iflag", "oflag"};
  std::optional<std::string_view> path;
  for (size_t i = 1; i < w.size(); ++i) {
    if (!plain_word(w[i])) return std::nullopt;
    size_t eq = w[i].find('=');
    if (eq == std::string_view::npos || eq + 1 == w[i].size()) return std::nullopt;
    std::string_view key = w[i].substr(0, eq);
    if (key == "of") {
      if (path) return std::nullopt;
      path = w[i].substr(eq + 1);
    } else if (std::find(kOperands.begin(), kOperands.end(), key) == kOperands.end()) {
      return std::nullopt;
    }
  }
  if (!path || !file_path(*path)) return std::nullopt;
  return UploadSink{"dd", std::string(*path)};
}

// `tar x` of an uncompressed archive from stdin: short options as one cluster (with or without
// '-') or apart, the few long options that only shape how files are written (not
// `--overwrite`, which writes through links instead of replacing them), `f -` and one `-C DIR`
// (GNU tar applies several in turn). Not compressed archives, whose members could not
// be listed (tar_follower.h), nor `--strip-components` (the paths listed would not be the paths
// written).
std::optional<UploadSink> tar_sink(const Words& w) {
  static constexpr std::string_view kFlags = "xvpmokU";  // plus f and C, which take a word
  static constexpr std::array<std::string_view, 12> kLong = {"--extract",
                                                             "--get",
                                                             "--verbose",
                                                             "--preserve-permissions",
                                                             "--same-permissions",
                                                             "--no-same-owner",
                                                             "--no-same-permissions",
                                                             "--numeric-owner",
                                                             "--keep-old-files",
                                                             "--skip-old-files",
                                                             "--touch",
                                                             "--no-overwrite-dir"};
  bool extract = false;
  std::optional<std::string_view> directory;
  std::vector<char> wants;  // options of the cluster just read that take the next words
  auto set_directory = [&](std::string_view d) {
    if (directory) return false;
    directory = d;
    return true;
  };
  for (size_t i = 1; i < w.size(); ++i) {
    std::string_view word = w[i];
    if (!plain_word(word)) return std::nullopt;
    if (!wants.empty()) {
      char option = wants.front();
      wants.erase(wants.begin());
      if (option == 'f' && word != "-") return std::nullopt;
      if (option == 'C' && !set_directory(word)) return std::nullopt;
      continue;
    }
    if (starts_with(word, "--")) {
      if (starts_with(word, "--file=")) {
        if (word != "--file=-") return std::nullopt;
      } else if (starts_with(word, "--directory=")) {
        if (!set_directory(word.substr(12))) return std::nullopt;
      } else if (std::find(kLong.begin(), kLong.end(), word) == kLong.end()) {
        return std::nullopt;
      } else if (word == "--extract" || word == "--get") {
        extract = true;
      }
      continue;
    }
    // A cluster: "-xf" anywhere, or "xf" as the first word (tar's old style).
    std::string_view cluster = word;
    if (cluster[0] == '-') {
      cluster.remove_prefix(1);
    } else if (i != 1) {
      return std::nullopt;  // an operand: a member name, or something else
    }
    if (cluster.empty()) return std::nullopt;
    for (size_t k = 0; k < cluster.size(); ++k) {
      char c = cluster[k];
      // In a '-' cluster, GNU tar gives f and C the rest of the cluster as their argument: only
      // as its last letter do they take the next word.
      if ((c == 'f' || c == 'C') && word[0] == '-' && k + 1 != cluster.size()) return std::nullopt;
      if (c == 'f' || c == 'C') {
        wants.push_back(c);
      } else if (kFlags.find(c) == std::string_view::npos) {
        return std::nullopt;
      }
      if (c == 'x') extract = true;
    }
  }
  std::string_view dir = directory.value_or(".");
  if (!extract || !wants.empty() || !file_path(dir)) return std::nullopt;
  return UploadSink{"tar", std::string(dir)};
}

}  // namespace

std::optional<UploadSink> parse_upload_sink(std::string_view exec) {
  // Exactly as the shell splits it: a newline anywhere would start another command.
  auto words = simple_words(exec);
  if (!words) return std::nullopt;
  if ((*words)[0] == "cat") return cat_sink(*words);
  if ((*words)[0] == "dd") return dd_sink(*words);
  if ((*words)[0] == "tar") return tar_sink(*words);
  return std::nullopt;
}

}  // namespace castgate::asciicast
