// Exec commands whose standard input is a file being uploaded, not something the target runs:
// `cat > PATH`, `dd of=PATH`, `tar x` (what `tar c DIR | ssh host 'tar x -C DEST'` sends; an
// uncompressed archive, whose members tar_follower.h lists). Their
// binary input may be recorded as a stream summary (stream_summary.h) like binary output, as
// SFTP and SCP uploads are recorded as metadata. Anything else keeps its input recorded in full:
// `ssh host bash` reads its commands from stdin.
//
// Recognised strictly, word by word (single spaces, plain words, shell_syntax.h): only options
// that make the program write its input to a file; none that would hand it to another program
// (`tar --to-command`, `-I`, `--use-compress-program`, `--checkpoint-action`, `--info-script`), no
// operands beyond the destination, no second command, and a destination that is a file path (not
// a device, /proc, or bash's /dev/tcp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace castgate::asciicast {

struct UploadSink {
  std::string program;  // "cat", "dd" or "tar"
  std::string path;     // the file written, or the directory tar extracts into ("." if none)
};

std::optional<UploadSink> parse_upload_sink(std::string_view exec);

}  // namespace castgate::asciicast
