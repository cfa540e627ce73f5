// A whole stored log (many lines, any wrapping, plain, gzip or zstd) through every player
// command: list and commands (read in pieces, as they read compressed inputs), verify, channels
// and export. Stored logs are untrusted: a crafted line or a damaged compressed object must never
// crash the player (what it refuses, it refuses with an error).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "player/catalog.h"
#include "player/commands.h"
#include "player/export.h"
#include "player/input_chunks.h"
#include "player/verify.h"

namespace {
// The public recording key of the run that produced the seed logs (so valid signatures are
// checked too), read the way `castgate-player verify --key` reads it.
const char kSeedKey[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICwe3ayM3SefpwZqpj9WptFy3ledyrDHUsCfi7j+NtBr seed\n";

int memfd_with(std::string_view bytes) {
  int fd = memfd_create("fuzz", 0);
  if (fd >= 0 && !bytes.empty() && write(fd, bytes.data(), bytes.size()) != ssize_t(bytes.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

std::vector<castgate::player::RecordingKey> seed_keys() {
  int fd = memfd_with(kSeedKey);
  auto keys = castgate::player::load_recording_keys("/proc/self/fd/" + std::to_string(fd));
  close(fd);
  return keys;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace castgate::player;
  static const auto keys = seed_keys();
  int fd = memfd_with(std::string_view(reinterpret_cast<const char*>(data), size));
  if (fd < 0) return 0;
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    CommandIndex index;
    InputChunks({path}, 1).read([&](std::string_view text) { index.add_text(text); },
                                [](size_t, const std::string&) {});
    index.rows({});
  } catch (const std::runtime_error&) {
    // Not valid compressed data, or a decompression bomb: refused as the player refuses it.
  }
  try {
    MappedFile file(path);
    Catalog catalog;
    catalog.add_file(file);
    CatalogFilter all;
    all.include_denied = true;
    for (const auto& s : catalog.sessions(all)) {
      SessionExporter ex(s.session, true);
      ex.add_file(file);
      std::ostringstream out;
      for (const auto& ch : ex.channels()) (void)ex.write(out, ch.channel);
      (void)ex.write(out, std::nullopt);
      ex.other_events();
    }
    for (bool reorder : {false, true}) {
      VerifyOptions options;
      options.allow_reorder = reorder;
      Verifier verifier(keys, options);
      verifier.add_file(file);
      for (const auto& verdict : verifier.finish()) {
        // What export and html --key show: only the verified events.
        SessionExporter verified(verdict.session, true, &verdict.verified);
        verified.add_file(file);
        std::ostringstream out;
        (void)verified.write(out, std::nullopt);
      }
    }
  } catch (const std::runtime_error&) {
    // The same refusal, through the temporary-file path verify and export read.
  }
  close(fd);
  return 0;
}
