// Second hostile review of upload sinks (after the H0..H17 fixes): archives GNU tar 1.34 reads
// differently from the tar follower, or extracts to a file the path alerts do not see. Each
// TEST_CASE asserts what the recording must say; each failed before the fix. Archives are built
// here, header by header; each was checked with GNU tar 1.34 (see the comment of each case).
#include <doctest/doctest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "asciicast/alert_rules.h"
#include "asciicast/channel_recording.h"
#include "asciicast/tar_follower.h"
#include "asciicast/upload_sink.h"
#include "tests/asciicast/recorded_channel.h"

using namespace castgate;
using namespace castgate::asciicast;
using nlohmann::json;

namespace {

std::string header(const std::string& name, char type, uint64_t size,
                   const std::string& link = "") {
  std::string b(512, '\0');
  b.replace(0, name.size(), name);
  b.replace(100, 8, std::string("0000644\0", 8));
  b.replace(108, 8, std::string("0001750\0", 8));
  b.replace(116, 8, std::string("0001750\0", 8));
  char num[13];
  std::snprintf(num, sizeof num, "%011llo", static_cast<unsigned long long>(size));
  b.replace(124, 12, std::string(num, 12));
  b.replace(136, 12, std::string("14000000000\0", 12));
  b[156] = type;
  b.replace(157, link.size(), link);
  b.replace(257, 8,
            std::string("ustar\0"
                        "00",
                        8));
  b.replace(148, 8, std::string(8, ' '));
  unsigned sum = 0;
  for (unsigned char c : b) sum += c;
  char ck[9];
  std::snprintf(ck, sizeof ck, "%06o", sum);
  b.replace(148, 8, std::string(ck, 6) + std::string("\0 ", 2));
  return b;
}

std::string data(const std::string& d) {
  return d + std::string((512 - d.size() % 512) % 512, '\0');
}

std::string end() {
  return std::string(10240, '\0');
}

const AlertRules& alerts() {
  static AlertRules a = AlertRules::compile(AlertRules::defaults());
  return a;
}

struct Channel : castgate::asciicast::testing::RecordedChannel {
  explicit Channel(std::string command) : RecordedChannel(true, std::move(command), &alerts()) {}
  // Whether the record shows the member: as a listed file with an alert, or as an error with the
  // archive recorded in full from there.
  bool shows(const std::string& needle) const {
    bool alerted = !events("alert").empty();
    bool failed_closed = !events("file.error").empty() &&
                         recorded("asciicast.input").find(needle) != std::string::npos;
    return alerted || failed_closed;
  }
};

}  // namespace

// R1: a regular member ('0', '\0' or '7') whose name ends in '/' is a directory to GNU tar
// (extract.c prepare_to_extract: "BSD tar uses the convention that a slash suffix means a
// directory"), and GNU tar then reads no data for it, whatever its size field says: the next
// block is the next header. The follower lists it as a file of that size and skips the blocks
// GNU tar reads as headers: here the member .ssh/rc (run by sshd at every login) is not listed,
// no alert, and the archive is a summary. Checked: `tar xv < A` in a home prints "r/" and
// ".ssh/rc" and writes .ssh/rc.
TEST_CASE("R1 tar regular member with a trailing slash hides the next member") {
  for (char type : {'0', '\0', '7'}) {
    CAPTURE(static_cast<int>(type));
    std::string hidden = header(".ssh/rc", '0', 20) + data("touch /tmp/pwned #..\n");
    std::string archive = header("r/", type, hidden.size()) + hidden + end();
    Channel c("tar xf - -C /home/ubuntu");
    c.rec->from_user(archive);
    c.rec->finish();
    INFO(c.paths());
    CHECK(c.shows(".ssh/rc"));
  }
}

// R2: with --overwrite (accepted by upload_sink.cpp) GNU tar opens an existing file with O_TRUNC
// instead of unlinking it: a hard link member h -> FILE then a regular member h writes FILE's
// contents in place. The link target is checked against the path alerts raw, so ".ssh//rc"
// (or ".ssh/./authorized_keys", "etc//crontab" with -C /) is not matched. Checked: in a home
// with .ssh/rc, `tar xv --overwrite < A` leaves .ssh/rc (link count 2) holding the new script.
// The record: hardlink /home/ubuntu/h -> .ssh//rc, transfer /home/ubuntu/h, no alert.
TEST_CASE("R2 tar --overwrite writes through a hard link member to an unalerted path") {
  for (std::string target : {".ssh//rc", ".ssh/./rc", ".ssh//authorized_keys"}) {
    CAPTURE(target);
    std::string archive =
        header("h", '1', 0, target) + header("h", '0', 21) + data("touch /tmp/pwned #..\n") + end();
    // --overwrite is no upload sink (recorded in full); without it tar replaces the link, and
    // the link's target, normalised, is what the path alerts see.
    CHECK_FALSE(parse_upload_sink("tar xf - --overwrite -C /home/ubuntu"));
    Channel c("tar xf - -C /home/ubuntu");
    c.rec->from_user(archive);
    c.rec->finish();
    INFO(c.paths());
    CHECK(c.shows("rc"));
  }
}

// R2b: the raw link target is also what evades the alert when no contents go through it: a
// symbolic link ".ssh//rc" or hard link target "etc//crontab" is not matched by the rules,
// though they name the same file as ".ssh/rc".
TEST_CASE("R2b link targets are matched against path alerts unnormalised") {
  Channel c("tar xf - -C /");
  c.rec->from_user(header("x", '1', 0, "etc//crontab") + end());
  c.rec->finish();
  INFO(c.paths());
  CHECK_FALSE(c.events("alert").empty());
}

namespace {
// A pax extended header holding exactly `records` ("LEN key=value\n" each).
std::string pax(const std::string& records) {
  return header("PaxHeaders/x", 'x', records.size()) + data(records);
}
}  // namespace

// R3: GNU tar reads a pax value as a C string (xheader.c decode_string): "path=k\0junk" names the
// member "k". The follower keeps the NUL, so its symbolic link is remembered as "k\0junk" and the
// H7 check (members under a symbolic link of the archive) does not see that "k/rc" is under "k".
// Checked: `tar xv < A` in a home with .ssh makes k -> .ssh and writes .ssh/rc. The record:
// symlink /home/ubuntu/k<NUL>junk -> .ssh, transfer /home/ubuntu/k/rc, no alert, a summary.
TEST_CASE("R3 a NUL in a pax path hides a symbolic link from the H7 check") {
  std::string archive = pax(std::string("15 path=k\0junk\n", 15)) + header("k", '2', 0, ".ssh") +
                        header("k/rc", '0', 21) + data("touch /tmp/pwned #..\n") + end();
  Channel c("tar xf - -C /home/ubuntu");
  c.rec->from_user(archive);
  c.rec->finish();
  INFO(c.paths());
  CHECK(c.shows("k/rc"));
}

// R4: a hard link to the archive's own symbolic link is a second symbolic link (link(2) does not
// follow it): k -> .ssh, h hard link to k, then h/rc. GNU tar writes .ssh/rc; the follower
// remembers only type '2' members as symbolic links, so h/rc is listed, no alert, a summary.
// Checked: `tar xv < A` in a home with .ssh: h and k both -> .ssh (link count 2), .ssh/rc written.
TEST_CASE("R4 a hard link to the archive's symbolic link escapes the H7 check") {
  std::string archive = header("k", '2', 0, ".ssh") + header("h", '1', 0, "k") +
                        header("h/rc", '0', 21) + data("touch /tmp/pwned #..\n") + end();
  Channel c("tar xf - -C /home/ubuntu");
  c.rec->from_user(archive);
  c.rec->finish();
  INFO(c.paths());
  CHECK(c.shows("h/rc"));
}

// R5: in a dash cluster, GNU tar's getopt gives an option that takes an argument the REST of the
// cluster: `tar -xCv DIR -f -` extracts into "v", and DIR is a member name to select. The
// recogniser reads C's argument as the next word: the listed paths (and path alerts) are DIR/...
// while GNU tar writes v/... (and only the members named DIR). Checked: `tar -xCv dest -f -`
// says "dest: Not found in archive" and extracts nothing else.
TEST_CASE("R5 -xCv DIR: C takes the rest of the cluster, not the next word") {
  CHECK_FALSE(parse_upload_sink("tar -xCv dest -f -"));
  CHECK_FALSE(parse_upload_sink("tar -xCf dest -"));
}
