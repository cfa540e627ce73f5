#include "asciicast/upload_sink.h"

#include <algorithm>
#include <array>
#include <vector>

#include "asciicast/shell_syntax.h"
#include "common/text.h"

namespace castgate::asciicast {
namespace {

using Words = std::vector<std::string>;

// A destination that is a file or directory somewhere, not a device, a kernel interface or a
// path bash turns into a network connection (`> /dev/tcp/HOST/PORT`): the upload would go
// somewhere else than a file, recorded in full then.
bool file_path(std::string_view path) {
  if (!plain_word(path)) return false;
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
  std::optional<std::string> path;
  for (size_t i = 1; i < w.size(); ++i) {
    if (!plain_word(w[i])) return std::nullopt;
    size_t eq = w[i].find('=');
    if (eq == std::string::npos || eq + 1 == w[i].size()) return std::nullopt;
    std::string_view key = std::string_view(w[i]).substr(0, eq);
    if (key == "of") {
      if (path) return std::nullopt;
      path = w[i].substr(eq + 1);
    } else if (std::find(kOperands.begin(), kOperands.end(), key) == kOperands.end()) {
      return std::nullopt;
    }
  }
  if (!path || !file_path(*path)) return std::nullopt;
  return UploadSink{"dd", *path};
}

// `tar x` from stdin: short options as one cluster (with or without '-') or apart, the few long
// options that only shape how files are written, `f -` and `-C DIR`. Not compressed archives:
// their members could not be listed (tar_follower.h) without inflating them.
std::optional<UploadSink> tar_sink(const Words& w) {
  static constexpr std::string_view kFlags = "xvzjJpmokU";  // plus f and C, which take a word
  static constexpr std::array<std::string_view, 18> kLong = {"--extract",
                                                             "--get",
                                                             "--verbose",
                                                             "--gzip",
                                                             "--gunzip",
                                                             "--bzip2",
                                                             "--xz",
                                                             "--zstd",
                                                             "--preserve-permissions",
                                                             "--same-permissions",
                                                             "--no-same-owner",
                                                             "--no-same-permissions",
                                                             "--numeric-owner",
                                                             "--keep-old-files",
                                                             "--skip-old-files",
                                                             "--overwrite",
                                                             "--touch",
                                                             "--no-overwrite-dir"};
  bool extract = false;
  std::string directory = ".";
  std::vector<char> wants;  // options of the cluster just read that take the next words
  for (size_t i = 1; i < w.size(); ++i) {
    const std::string& word = w[i];
    if (!plain_word(word)) return std::nullopt;
    if (!wants.empty()) {
      char option = wants.front();
      wants.erase(wants.begin());
      if (option == 'f' && word != "-") return std::nullopt;
      if (option == 'C') directory = word;
      continue;
    }
    if (starts_with(word, "--")) {
      if (starts_with(word, "--file=")) {
        if (word != "--file=-") return std::nullopt;
      } else if (starts_with(word, "--directory=") && word.size() > 12) {
        directory = word.substr(12);
      } else if (starts_with(word, "--strip-components=") && word.size() > 19 &&
                 word.find_first_not_of("0123456789", 19) == std::string::npos) {
      } else if (std::find(kLong.begin(), kLong.end(), word) == kLong.end()) {
        return std::nullopt;
      } else if (word == "--extract" || word == "--get") {
        extract = true;
      }
      continue;
    }
    // A cluster: "-xzf" anywhere, or "xzf" as the first word (tar's old style).
    std::string_view cluster = word;
    if (cluster[0] == '-') {
      cluster.remove_prefix(1);
    } else if (i != 1) {
      return std::nullopt;  // an operand: a member name, or something else
    }
    if (cluster.empty()) return std::nullopt;
    for (char c : cluster) {
      if (c == 'f' || c == 'C') {
        wants.push_back(c);
      } else if (kFlags.find(c) == std::string_view::npos) {
        return std::nullopt;
      }
      if (c == 'x') extract = true;
    }
  }
  if (!extract || !wants.empty() || !file_path(directory)) return std::nullopt;
  return UploadSink{"tar", directory};
}

}  // namespace

std::optional<UploadSink> parse_upload_sink(std::string_view exec) {
  Words words = split(exec, ' ', false);
  if (words.empty()) return std::nullopt;
  if (words[0] == "cat") return cat_sink(words);
  if (words[0] == "dd") return dd_sink(words);
  if (words[0] == "tar") return tar_sink(words);
  return std::nullopt;
}

}  // namespace castgate::asciicast
