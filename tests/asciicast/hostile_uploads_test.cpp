// Uploads to sinks (upload_sink.h, tar_follower.h) as a hostile review attacked them: each
// TEST_CASE is tagged with its finding id (H0..H17) and asserts what the recording must say; each
// failed on the reviewed code. The archives in data/transfers/hostile were written by
// make_hostile.py there, and each was checked with GNU tar 1.34 (`tar xf - < X.tar` extracts
// .bashrc, or .ssh/rc for symlink-dir.tar). What the follower does not model exactly as GNU tar
// reads it is an error, and the input is recorded in full from there: the hidden name shows.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "asciicast/alert_rules.h"
#include "asciicast/channel_recording.h"
#include "asciicast/session_log.h"
#include "asciicast/stream_summary.h"
#include "asciicast/tar_follower.h"
#include "asciicast/transfer_follower.h"
#include "asciicast/upload_sink.h"
#include "tests/asciicast/recorded_channel.h"

using namespace castgate;
using namespace castgate::asciicast;
using nlohmann::json;
using namespace std::literals;

namespace {

using castgate::asciicast::testing::MemorySink;

struct Hostile : castgate::asciicast::testing::RecordedChannel {
  explicit Hostile(std::string command)
      : RecordedChannel(true, std::move(command), &default_alerts()) {}
  static AlertRules& default_alerts() {
    static AlertRules alerts = AlertRules::compile(AlertRules::defaults());
    return alerts;
  }
  std::string all() const {
    std::string s;
    for (const auto& l : sink.lines) s += l + "\n";
    return s;
  }
  size_t alerts_named(std::string_view rule) const {
    size_t n = 0;
    for (const auto& e : events("alert"))
      if (e["rule"]["name"] == rule) ++n;
    return n;
  }
};

std::string hostile_tar(const std::string& name) {
  std::ifstream in(
      std::string(CASTGATE_SOURCE_DIR) + "/tests/asciicast/data/transfers/hostile/" + name,
      std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!s.empty());
  return s;
}

// Every archive here makes GNU tar 1.34 write ./.bashrc (checked by hand: `tar xvf - < F`): the
// follower must stop with an error, and the archive be recorded in full (the name shows).
void check_bashrc_seen(const std::string& archive) {
  CAPTURE(archive);
  Hostile h("tar xf - -C /home/ubuntu");
  h.rec->from_user(hostile_tar(archive));
  h.rec->finish();
  INFO(h.paths());
  REQUIRE(h.events("file.error").size() == 1);
  CHECK(h.events("stream.end").empty());
  std::string input;
  for (const auto& e : h.events("asciicast.input"))
    input += e["asciicast"]["event"][2].get<std::string>();
  CHECK(input.find(".bashrc") != std::string::npos);
}

}  // namespace

// H0 (critical): castgate::split trims each word, the shell does not: "tar x -C\n /bin/bash" is
// recognised as `tar x -C /bin/bash` (extract into the directory /bin/bash), but the target's
// shell runs `tar x -C` (fails at once: option requires an argument, stdin unread) and then, on
// its second line, `/bin/bash`, which reads the upload as its commands. The upload is a valid tar
// archive (one member named "#", so the header is a bash comment; bash drops NULs), the member's
// data a script hidden from the summary's strings (H10's encoding). The record: a tar member
// "/bin/bash/#", a binary input summary, no error, no command. Checked with GNU tar 1.34 and
// bash 5.2: `bash -c $'tar x -C\n /bin/bash' < shell-in-tar.tar` runs `id > /tmp/pwned`.
TEST_CASE("H0 a newline after -C: the shell runs the 'directory' with the upload as its stdin") {
  CHECK_FALSE(parse_upload_sink("tar x -C\n /bin/bash"));
  CHECK_FALSE(parse_upload_sink("tar xC\n /bin/sh"));
  CHECK_FALSE(parse_upload_sink("tar -xC\n /usr/bin/python3"));
  Hostile h("tar x -C\n /bin/bash");
  h.rec->from_user(hostile_tar("shell-in-tar.tar"));
  h.rec->finish();
  INFO(h.all());
  // What bash ran is in the record: the archive recorded byte for byte, no summary.
  CHECK(h.events("stream.end").empty());
  CHECK(h.events("file.transfer").empty());
  std::string input;
  for (const auto& e : h.events("asciicast.input"))
    input += e["asciicast"]["event"][2].get<std::string>();
  CHECK(input.size() >= 1024);
}

// H1: a Solaris 'X' extended header is a pax header to GNU tar (path=.bashrc renames the next
// member); the follower lists it as a regular file "PaxHeaders/a" and the next as innocent.txt.
TEST_CASE("H1 tar 'X' (Solaris pax) header renames the next member") {
  check_bashrc_seen("X-type.tar");
}

// H2: pax 'x' (path=.bashrc) THEN GNU 'L' (innocent.txt): GNU tar's pax path wins, the
// follower's long_name_ is overwritten by the 'L' data.
TEST_CASE("H2 tar pax header before a GNU long name") {
  check_bashrc_seen("x-then-L.tar");
}

// H3: two pax 'x' headers: GNU tar keeps only the last one (path from the first is dropped, the
// ustar name .bashrc is used); the follower keeps path=innocent.txt from the first.
TEST_CASE("H3 tar two pax headers in a row") {
  check_bashrc_seen("x-x.tar");
}

// H4: a pax global header 'g' with path=.bashrc applies to the following members in GNU tar;
// the follower skips 'g' headers.
TEST_CASE("H4 tar global pax header path") {
  check_bashrc_seen("g-path.tar");
}

// H5: pax GNU.sparse.name=.bashrc overrides the name in GNU tar; the follower reads only path.
TEST_CASE("H5 tar pax GNU.sparse.name") {
  check_bashrc_seen("sparse-name.tar");
}

// H15: a pax record length of 2^64+30 wraps in pax_records' uint64 to 30: the follower applies
// path=abc; GNU tar rejects the record (out of range) and extracts the ustar name .bashrc.
TEST_CASE("H15 tar pax record length overflow") {
  check_bashrc_seen("pax-len-overflow.tar");
}

// H16: any header the follower accepts and GNU tar rejects hides what follows: GNU tar skips to
// the next valid header block by block, the follower skips the bogus member's size. Here the
// checksum is in base-256 (the follower's number() takes it; GNU tar reads checksums as octal).
TEST_CASE("H16 tar header GNU tar rejects but the follower accepts") {
  check_bashrc_seen("chksum-b256.tar");
}

// H6: an old-GNU sparse member ('S', isextended=1) is followed by extension blocks that are not
// counted in its size; the follower is one block behind from there: it parses the member's last
// data block (attacker-chosen: a header "innocent.txt" whose size covers the real next member)
// and never sees the real .bashrc header. Real `tar -S --format=oldgnu` archives with more than
// four holes already desynchronise it.
TEST_CASE("H6 tar old GNU sparse extension blocks desynchronise the follower") {
  check_bashrc_seen("sparse-ext.tar");
}

// H7: a symlink member k -> .ssh (relative, no "..": GNU tar creates it at once) then k/rc: GNU
// tar writes .ssh/rc (run by sshd at every login); the member is listed as k/rc, no alert. The
// same works through any symlink already on the target, and for SFTP.
TEST_CASE("H7 tar member written through a symlink from the same archive") {
  Hostile h("tar xf - -C /home/ubuntu");
  h.rec->from_user(hostile_tar("symlink-dir.tar"));
  h.rec->finish();
  INFO(h.paths());
  auto errors = h.events("file.error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["castgate"]["file"]["status"] ==
        "not tar: a member under a symbolic link of the archive");
  CHECK(h.events("stream.end").empty());
}

// H8: GNU tar applies every -C in turn (`-C .ssh -C .` extracts into .ssh, `-C a -C b` into a/b);
// the recogniser keeps only the last one, so the members' paths (and alerts) are wrong.
TEST_CASE("H8 tar with several -C options") {
  CHECK_FALSE(parse_upload_sink("tar x -C .ssh -C ."));  // not recognised: recorded in full
  CHECK_FALSE(parse_upload_sink("tar x -C /srv/a --directory=b"));
}

// H9: the words are trimmed of \n, \r and \t at their ends, the shell does not: "cat\n > F" is
// `cat` (stdin copied to stdout) and an empty `> F`; "cat > F\r" writes "F\r". Recorded as an
// upload to F either way.
TEST_CASE("H9 exec strings with newlines / CR at word ends are not the command they look like") {
  CHECK_FALSE(parse_upload_sink("cat\n > /srv/x"));
  CHECK_FALSE(parse_upload_sink("dd\n of=/srv/x"));
  CHECK_FALSE(parse_upload_sink("tar\n xz"));  // `tar` then the program `xz`
  CHECK_FALSE(parse_upload_sink("cat > /srv/x\r"));
}

// H10: stdin to a sink is executed when the target's startup file redefines the sink (bash run
// by sshd sources ~/.bashrc, zsh ~/.zshenv): `cat() { bash -s; }`. The script below runs in
// bash (`bash < script`: id, echo), yet the stream summary's strings hold none of it: one
// character per line (backslash-newline continuations: lines of 2 printable characters, under
// kMinLine), and a comment of control bytes makes the chunk binary.
TEST_CASE("H10 a shell script hidden from a stream summary's strings") {
  std::string cmd = "id > /tmp/pwned; echo PWNED-VIA-STDIN";
  std::string script;
  for (char c : cmd) script += std::string(1, c) + "\\\n";
  script += "\n#" + std::string(200, '\x01') + "\n";
  REQUIRE(is_binary_chunk(script));
  Hostile h("cat > /home/ubuntu/notes.bin");
  h.rec->from_user(script);
  h.rec->finish();
  INFO(h.all());
  CHECK(h.all().find("PWNED") != std::string::npos);
}

// H11: `tar xz` is accepted (z, j, J, --gzip, --zstd... are in the allowlist although the header
// says compressed archives are not followed). A gzip member with FEXTRA (RFC 1952: up to 64 KiB
// skipped by gunzip) whose first 1536 bytes read as a tar header of type 'g' and two zero
// blocks: the follower sees an empty archive that ended, lists nothing, reports no error, and
// summarises the rest; GNU tar 1.34 (`tar xzf -`) extracts .bashrc, exit status 0.
TEST_CASE("H11 a gzip stream that looks like an empty tar archive to the follower") {
  Hostile h("tar xzf - -C /home/ubuntu");
  h.rec->from_user(hostile_tar("tgz-fextra.tar.gz"));
  h.rec->finish();
  INFO(h.all());
  CHECK_FALSE(parse_upload_sink("tar xzf - -C /home/ubuntu"));
  CHECK(h.events("stream.end").empty());  // not an upload sink: recorded in full
  CHECK(h.events("file.transfer").empty());
}

// H12: --strip-components=N is accepted but member paths are listed unstripped: member x/rc with
// `-C /home/ubuntu/.ssh --strip-components=1` is written to .ssh/rc and listed as .ssh/x/rc,
// which the shell-startup-file rule does not match.
TEST_CASE("H12 --strip-components paths listed unstripped") {
  CHECK_FALSE(parse_upload_sink("tar x -C /home/ubuntu/.ssh --strip-components=1"));
  Hostile h("tar x -C /home/ubuntu/.ssh --strip-components=1");
  h.rec->from_user(hostile_tar("strip.tar"));
  h.rec->finish();
  CHECK(h.events("stream.end").empty());
}

// H13: zsh expands a word starting with '=' to the command's path (EQUALS, on by default):
// `cat > =ls` overwrites /usr/bin/ls for a root login whose shell is zsh; recorded as an upload
// to a file named "=ls". Likewise a leading '~' is expanded by every shell (only cosmetic).
TEST_CASE("H13 zsh =cmd expansion in the destination") {
  CHECK_FALSE(parse_upload_sink("cat > =ls"));
}

// H14: places the target runs that the default path alerts miss, now reachable with the upload
// hidden in a summary (the same holds for SFTP/SCP): Debian's .bashrc sources ~/.bash_aliases;
// cron; systemd user units; XDG autostart; git hooks; ~/.ssh/config (ProxyCommand, LocalCommand).
TEST_CASE("H14 executed locations without a path alert") {
  for (std::string path :
       {"/home/ubuntu/.bash_aliases", "/etc/cron.d/backup", "/var/spool/cron/crontabs/ubuntu",
        "/home/ubuntu/.config/systemd/user/x.service", "/home/ubuntu/.config/autostart/x.desktop",
        "/home/ubuntu/repo/.git/hooks/post-merge", "/home/ubuntu/.ssh/config",
        "/home/ubuntu/.local/bin/ls"}) {
    CAPTURE(path);
    Hostile h("cat > " + path);
    h.rec->from_user(std::string(4096, '\x01'));
    h.rec->finish();
    CHECK(h.events("alert").size() == 1);
  }
}

// H17 (latent, same root cause as H0): parse_rsync_command trims words too and takes any plain
// word after "." as a path: "rsync --server\n . /dev/stdin" is an rsync upload to /dev/stdin, and
// the binary input is summarised while the follower waits for the server's version (status only
// "the target sent no rsync data"). The shell runs `rsync --server` (usage error, stdin unread)
// and then `. /dev/stdin` (checked: `printf 'echo RS-PWN\n' | bash -c $'rsync --server\n .
// /dev/stdin'` prints RS-PWN). Execution of THIS payload is blocked only by accident: `.` stops at
// the first NUL and the follower wants a 4-byte version (NULs) first. Untested variant: a path
// word after a newline, `rsync --server . DEST\n /bin/bash`, runs bash on what is left of stdin
// once a real rsync session ended.
TEST_CASE("H17 rsync --server with a newline: the shell sources stdin") {
  std::string cmd = "id > /tmp/pwned";
  std::string script = std::string("\x1f\0\0\0\n", 5);
  for (char c : cmd) script += std::string(1, c) + "\\\n";
  script += "\n#" + std::string(200, '\x01') + "\n";
  CHECK_FALSE(make_transfer_follower("rsync --server\n . /dev/stdin"));
  Hostile h("rsync --server\n . /dev/stdin");
  h.rec->from_user(script);
  h.rec->finish();
  INFO(h.all());
  CHECK(h.events("stream.end").empty());  // not rsync: recorded byte for byte
  CHECK(h.all().find("p\\\\\\nw\\\\\\nn") != std::string::npos);
}
