// The git, rsync and tar followers on arbitrary bytes. Input: a command line, "\n", then records
// of [direction byte (bit 0: from the user)][length, 2 bytes big-endian][bytes]. A command that is
// neither git nor rsync picks one of a few that are, so mutated commands still reach the parsers;
// the tar follower reads what the user sends, whatever the command.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "asciicast/tar_follower.h"
#include "asciicast/transfer_follower.h"
#include "asciicast/upload_sink.h"

using namespace castgate::asciicast;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kCommands[] = {"git-upload-pack '/r.git'",
                                          "git-receive-pack '/r.git'",
                                          "git upload-archive '/r.git'",
                                          "rsync --server -logDtpre.iLsfxCIvu . /d/",
                                          "rsync --server --sender -logDtprze.iLsfxCIvu . /d/",
                                          "rsync --server -logDtpr . /d/"};
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return 0;
  std::string_view exec = in.substr(0, nl);
  in.remove_prefix(nl + 1);
  // An upload sink names a file or directory, never from a word with shell syntax.
  if (auto sink = parse_upload_sink(exec))
    if (sink->path.empty() || sink->path.find_first_of(" ;|&$`'\"<>") != std::string::npos)
      __builtin_trap();
  auto follower = make_transfer_follower(exec);
  if (!follower) follower = make_transfer_follower(kCommands[exec.size() % std::size(kCommands)]);
  std::vector<FileOperation> out;
  // The tar follower on what the user sends: after its error, never another operation.
  TarFollower tar("/srv");
  std::vector<FileOperation> members;
  while (in.size() >= 3) {
    bool user = in[0] & 1;
    size_t len = static_cast<size_t>(static_cast<unsigned char>(in[1])) << 8 |
                 static_cast<unsigned char>(in[2]);
    in.remove_prefix(3);
    std::string_view chunk = in.substr(0, len);
    in.remove_prefix(chunk.size());
    user ? follower->from_user(chunk, out) : follower->from_target(chunk, out);
    if (user) {
      bool failed = !tar.error().empty();
      size_t before = members.size();
      tar.feed(chunk, members);
      if (failed && members.size() != before) __builtin_trap();
    }
  }
  tar.finish(members);
  for (size_t i = 0; i < members.size(); ++i)
    if ((members[i].action == "error") != (i + 1 == members.size() && !tar.error().empty()))
      __builtin_trap();
  follower->finish(out);
  // Exactly one operation: the summary, or the error that stopped the follower.
  if (out.size() != 1) __builtin_trap();
  if (follower->error().empty() != (out[0].action == "transfer")) __builtin_trap();
  nlohmann::json castgate;
  add_transfer_fields(out[0], castgate);
  return 0;
}
