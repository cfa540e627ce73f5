// git and rsync followers on real protocol bytes: tests/asciicast/data/transfers holds both
// directions of real transfers (git 2.39 clone/fetch/push/archive over protocol v0, v1 and v2,
// rsync 3 up and down), captured by a stand-in for ssh that ran the remote command locally and
// kept what each side wrote. Plus hand-made hostile inputs.
#include "asciicast/transfer_follower.h"

#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "asciicast/channel_recording.h"
#include "asciicast/session_log.h"
#include "common/clock.h"
#include "tests/asciicast/memory_sink.h"

using namespace castgate::asciicast;

namespace {

struct Capture {
  std::string exec, from_user, from_target;
};

std::string read_capture_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Capture capture(const std::string& name) {
  std::string base = std::string(CASTGATE_SOURCE_DIR) + "/tests/asciicast/data/transfers/" + name;
  return {read_capture_file(base + ".exec"), read_capture_file(base + ".from_user"),
          read_capture_file(base + ".from_target")};
}

enum class Order { kUserFirst, kTargetFirst, kInterleaved };

// Feeds both directions in pieces of `piece` bytes, in `order` (the follower must cope with bytes
// that arrive before what they answer: it holds them until the other side has spoken).
std::vector<FileOperation> follow(const Capture& c, Order order, size_t piece) {
  auto f = make_transfer_follower(c.exec);
  REQUIRE(f);
  std::vector<FileOperation> out;
  auto feed = [&](const std::string& bytes, bool user, size_t& at) {
    auto part = std::string_view(bytes).substr(at, piece);
    at += part.size();
    user ? f->from_user(part, out) : f->from_target(part, out);
  };
  size_t u = 0, t = 0;
  if (order == Order::kUserFirst) {
    while (u < c.from_user.size()) feed(c.from_user, true, u);
    while (t < c.from_target.size()) feed(c.from_target, false, t);
  } else if (order == Order::kTargetFirst) {
    while (t < c.from_target.size()) feed(c.from_target, false, t);
    while (u < c.from_user.size()) feed(c.from_user, true, u);
  } else {
    while (u < c.from_user.size() || t < c.from_target.size()) {
      if (t < c.from_target.size()) feed(c.from_target, false, t);
      if (u < c.from_user.size()) feed(c.from_user, true, u);
    }
  }
  CHECK_MESSAGE(f->error().empty(), f->error());
  f->finish(out);
  return out;
}

// The one summary operation, the same whatever the order and the pieces.
FileOperation summary_of(const std::string& name) {
  Capture c = capture(name);
  std::vector<FileOperation> first;
  for (Order order : {Order::kUserFirst, Order::kTargetFirst, Order::kInterleaved}) {
    for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
      CAPTURE(name);
      CAPTURE(static_cast<int>(order));
      CAPTURE(piece);
      auto ops = follow(c, order, piece);
      REQUIRE(ops.size() == 1);
      CHECK(ops[0].action == "transfer");
      CHECK(ops[0].bytes_written == c.from_user.size());
      CHECK(ops[0].bytes_read == c.from_target.size());
      if (first.empty()) {
        first = ops;
      } else {
        CHECK(ops[0].ok == first[0].ok);
        CHECK(ops[0].status == first[0].status);
      }
    }
  }
  return first[0];
}

std::string oid(char c) {
  return std::string(40, c);
}

std::string pkt(std::string_view payload) {
  char len[5];
  std::snprintf(len, sizeof len, "%04zx", payload.size() + 4);
  return len + std::string(payload);
}

std::string pack_header(uint32_t version, uint32_t objects) {
  std::string h = "PACK";
  for (uint32_t v : {version, objects})
    for (int s = 24; s >= 0; s -= 8) h += static_cast<char>((v >> s) & 0xff);
  return h;
}

// Feeds hostile bytes whole and in single bytes; returns the error (the same both ways).
std::string error_of(std::string_view exec, const std::string& user, const std::string& target) {
  std::string first;
  for (size_t piece : {size_t{1}, size_t{1} << 20}) {
    auto f = make_transfer_follower(exec);
    REQUIRE(f);
    std::vector<FileOperation> out;
    for (size_t i = 0; i < user.size(); i += piece)
      f->from_user(std::string_view(user).substr(i, piece), out);
    for (size_t i = 0; i < target.size(); i += piece)
      f->from_target(std::string_view(target).substr(i, piece), out);
    f->finish(out);
    if (f->error().empty()) return "";
    // One error operation says so, and nothing else is reported.
    REQUIRE(out.size() == 1);
    CHECK(out[0].action == "error");
    CHECK_FALSE(out[0].ok);
    CHECK(out[0].status == f->error());
    if (piece == 1) first = f->error();
  }
  return first;
}

const std::string kUpload = "git-upload-pack '/srv/r.git'";
const std::string kReceive = "git-receive-pack '/srv/r.git'";

std::string advertisement() {
  return pkt(oid('a') + " HEAD" + std::string(1, '\0') + "side-band-64k report-status\n") +
         pkt(oid('a') + " refs/heads/main\n") + "0000";
}

}  // namespace

TEST_CASE("git commands: exactly what git runs on the remote side") {
  auto c = parse_git_command("git-upload-pack '/tmp/cap/bare.git'");
  REQUIRE(c);
  CHECK(c->service == GitService::kUploadPack);
  CHECK(c->repository == "/tmp/cap/bare.git");
  c = parse_git_command("git receive-pack 'repos/it'\\''s.git'");
  REQUIRE(c);
  CHECK(c->service == GitService::kReceivePack);
  CHECK(c->repository == "repos/it's.git");
  c = parse_git_command("git-upload-archive 'a b/c!'\\!''");
  REQUIRE(c);
  CHECK(c->service == GitService::kUploadArchive);
  CHECK(c->repository == "a b/c!!");
  c = parse_git_command("git-upload-pack repo.git");
  REQUIRE(c);
  CHECK(c->repository == "repo.git");
  for (const char* bad :
       {"git-upload-pack '/r.git'; rm -rf /", "git-upload-pack '/r.git' x", "git-upload-pack",
        "git-upload-pack ''", "git-upload-pack '/r.git", "git-upload-pack /r.git;id",
        "git-upload-pack '/r'x'.git'", "git-upload-pack $(id)", "/usr/bin/git-upload-pack '/r'",
        "git-shell -c 'git-upload-pack /r'", "git-upload-packs '/r'", "git  upload-pack '/r'",
        "git-upload-pack '/r.git'\n", "git-upload-pack '/r\n.git'", "git-upload-pack \"/r\""}) {
    CAPTURE(std::string(bad));
    CHECK_FALSE(parse_git_command(bad));
  }
}

TEST_CASE("rsync commands: exactly what rsync runs on the remote side") {
  auto c = parse_rsync_command("rsync --server --sender -logDtprze.iLsfxCIvu . /tmp/cap/rs-dst/");
  REQUIRE(c);
  CHECK(c->sender);
  CHECK(c->compress);
  CHECK(c->client_info == ".iLsfxCIvu");
  CHECK(c->options == "-logDtprze.iLsfxCIvu");
  CHECK(c->paths == std::vector<std::string>{"/tmp/cap/rs-dst/"});
  c = parse_rsync_command("rsync --server -vlogDtpre.iLsfxCIvu --delete --cc=md5 . dir a/b");
  REQUIRE(c);
  CHECK_FALSE(c->sender);
  CHECK(c->checksum_choice);
  CHECK_FALSE(c->compress);
  CHECK(c->paths == std::vector<std::string>{"dir", "a/b"});
  for (const char* bad :
       {"rsync --server -a . /x; id", "rsync --server -a /x", "rsync -a . /x",
        "rsync --server --daemon .", "rsync --server -a . ", "rsync --server -a . $HOME",
        "rsync --server --rsh=`id` . /x", "rsync --server -a . /x|id",
        "sudo rsync --server -a . /x", "rsync --server -a . /a\\ b", "rsync --server -a . '/x'",
        "rsync --server -a .  /x"}) {
    CAPTURE(std::string(bad));
    CHECK_FALSE(parse_rsync_command(bad));
  }
  CHECK_FALSE(make_transfer_follower("scp -t /tmp"));
  CHECK_FALSE(make_transfer_follower("ls -l"));
}

TEST_CASE("git clone over protocol v0: refs, wants and the side-band pack") {
  FileOperation o = summary_of("clone-v0");
  CHECK(o.protocol == "git");
  CHECK(o.path == "/tmp/cap/bare.git");
  CHECK(o.direction == "download");
  CHECK(o.ok);
  CHECK(o.status.empty());
  REQUIRE(o.git);
  CHECK(o.git->service == "upload-pack");
  CHECK(o.git->version == 0);
  CHECK(o.git->advertised_refs == 3);  // HEAD, refs/heads/main, refs/tags/v1
  CHECK(o.git->wants == 3);
  CHECK(o.git->wanted.at(0) == "671e83f5a1ee4008fcd5c951080310591910c4df");
  CHECK(o.git->haves == 0);
  CHECK(o.git->pack_objects == 8u);
  CHECK(o.git->pack_bytes > 400);
  CHECK(o.git->pack_bytes < o.bytes_read);
}

TEST_CASE("git clone over protocol v1 and v2") {
  FileOperation v1 = summary_of("clone-v1");
  REQUIRE(v1.git);
  CHECK(v1.ok);
  CHECK(v1.git->version == 1);
  CHECK(v1.git->advertised_refs == 3);
  CHECK(v1.git->pack_objects == 8u);
  FileOperation v2 = summary_of("clone-v2");
  REQUIRE(v2.git);
  CHECK(v2.ok);
  CHECK(v2.git->version == 2);
  CHECK(v2.git->advertised_refs == 3);  // ls-refs
  CHECK(v2.git->wants == 3);
  CHECK(v2.git->pack_objects == 8u);
  CHECK(v2.git->pack_bytes == v1.git->pack_bytes);
}

TEST_CASE("git fetch sends what it has") {
  for (const char* name : {"fetch-v0", "fetch-v2"}) {
    CAPTURE(name);
    FileOperation o = summary_of(name);
    REQUIRE(o.git);
    CHECK(o.ok);
    CHECK(o.git->wants >= 1);
    CHECK(o.git->haves >= 1);
    CHECK(o.git->pack_objects == 3u);  // the one new commit, its tree, its blob
  }
}

TEST_CASE("git push: ref updates, the raw pack and the report") {
  FileOperation o = summary_of("push");
  CHECK(o.direction == "upload");
  CHECK(o.ok);
  REQUIRE(o.git);
  CHECK(o.git->service == "receive-pack");
  CHECK(o.git->ref_updates == 1);
  REQUIRE(o.git->refs.size() == 1);
  CHECK(o.git->refs[0].name == "refs/heads/main");
  CHECK(o.git->refs[0].old_id.size() == 40);
  CHECK(o.git->refs[0].new_id != o.git->refs[0].old_id);
  CHECK(o.git->refs[0].status == "ok");
  CHECK(o.git->pack_objects == 3u);
}

TEST_CASE("git push refused by a hook: ng with its reason, in the side-band report") {
  FileOperation o = summary_of("push-ng");
  CHECK_FALSE(o.ok);
  CHECK(o.status == "ng refs/heads/blocked hook declined");
  REQUIRE(o.git);
  CHECK(o.git->ref_updates == 3);
  REQUIRE(o.git->refs.size() == 3);
  CHECK(o.git->refs[0].name == "refs/heads/main");
  CHECK(o.git->refs[0].status == "ok");
  CHECK(o.git->refs[1].name == "refs/heads/blocked");
  CHECK(o.git->refs[1].old_id == std::string(40, '0'));
  CHECK(o.git->refs[1].status == "ng hook declined");
  CHECK(o.git->refs[2].name == "refs/heads/feature");
  CHECK(o.git->refs[2].status == "ok");
}

TEST_CASE("git push deleting a tag sends no pack") {
  FileOperation o = summary_of("push-delete");
  CHECK(o.ok);
  REQUIRE(o.git);
  REQUIRE(o.git->refs.size() == 1);
  CHECK(o.git->refs[0].name == "refs/tags/v1");
  CHECK(o.git->refs[0].new_id == std::string(40, '0'));
  CHECK(o.git->refs[0].status == "ok");
  CHECK_FALSE(o.git->pack_objects);
  CHECK(o.git->pack_bytes == 0);
}

TEST_CASE("git archive --remote: upload-archive's ACK and side-band data") {
  FileOperation o = summary_of("archive");
  CHECK(o.ok);
  REQUIRE(o.git);
  CHECK(o.git->service == "upload-archive");
  CHECK(o.git->pack_bytes == 10240);  // the tar archive
}

TEST_CASE("rsync up and down: versions, negotiation and multiplexed frames") {
  FileOperation up = summary_of("rsync-up");
  CHECK(up.protocol == "rsync");
  CHECK(up.direction == "upload");
  CHECK(up.path == "/tmp/cap/rs-dst/");
  CHECK(up.ok);
  REQUIRE(up.rsync);
  CHECK(up.rsync->version == 32);
  CHECK(up.rsync->options == "-logDtpre.iLsfxCIvu");
  CHECK(up.bytes_written > 3000);                 // the files went up
  FileOperation down = summary_of("rsync-down");  // compressed (-z): two negotiation strings
  CHECK(down.direction == "download");
  CHECK(down.ok);
  REQUIRE(down.rsync);
  CHECK(down.rsync->version == 32);
  FileOperation missing = summary_of("rsync-missing");
  CHECK(missing.direction == "download");
  REQUIRE(missing.rsync);
  CHECK(missing.rsync->paths == std::vector<std::string>{"/tmp/cap/nonexistent/"});
}

TEST_CASE("not git: bad lengths, huge lengths, text") {
  CHECK(error_of(kUpload, "", "zzzz") == "not git upload-pack: not a pkt-line length");
  CHECK(error_of(kUpload, "", "0003") == "not git upload-pack: invalid pkt-line length 0003");
  CHECK(error_of(kUpload, "", "fff1" + std::string(100, 'x')) ==
        "not git upload-pack: pkt-line longer than 65520 bytes");
  CHECK(error_of(kUpload, "", "Welcome to db1!\n") == "not git upload-pack: not a pkt-line length");
  CHECK(error_of(kUpload, "", pkt("hello world\n")) ==
        "not git upload-pack: malformed ref advertisement line");
  CHECK(error_of(kUpload, "",
                 pkt(oid('a') + " HEAD\n") + pkt(oid('b') + std::string(" x\0caps\n", 8))) ==
        "not git upload-pack: capabilities after the first advertised ref");
  CHECK(error_of(kUpload, pkt("have " + oid('a') + "\n"), "") ==
        "not git upload-pack: the request does not start with want");
  CHECK(error_of(kUpload, "ls -la\n", "") == "not git upload-pack: not a pkt-line length");
  CHECK(error_of(kUpload, "0000" + pkt("want " + oid('a')), advertisement()) ==
        "not git upload-pack: data after the end of the request");
  // A side-band packet of band 7.
  CHECK(error_of(
            kUpload, pkt("want " + oid('a') + " side-band-64k\n") + "0000" + pkt("done\n"),
            advertisement() + pkt("NAK\n") + pkt("\x01" + pack_header(2, 1)) + pkt("\x07junk")) ==
        "not git upload-pack: side-band packet of an unknown band");
  CHECK(error_of(kUpload, pkt("command=rm-rf\n") + "0000", "") ==
        "not git upload-pack: unknown v2 command");
}

TEST_CASE("a lone pkt-line of 65520 bytes is git; truncated data is an incomplete transfer") {
  // The largest pkt-line, then the data stops: not an error, but not a complete clone either.
  std::string target = advertisement() + pkt("NAK\n") + pkt("\x01" + pack_header(2, 1)) +
                       pkt(std::string(1, '\x01') + std::string(65515, 'p'));
  std::string user = pkt("want " + oid('a') + " side-band-64k\n") + "0000" + pkt("done\n");
  CHECK(error_of(kUpload, user, target) == "");
  auto f = make_transfer_follower(kUpload);
  std::vector<FileOperation> out;
  f->from_user(user, out);
  f->from_target(target.substr(0, target.size() - 10), out);
  f->finish(out);
  REQUIRE(out.size() == 1);
  CHECK_FALSE(out[0].ok);
  CHECK(out[0].status == "the response ended early");
}

TEST_CASE("a pack whose header lies") {
  std::string commands = pkt(oid('a') + " " + oid('b') + " refs/heads/main" + std::string(1, '\0') +
                             "report-status\n") +
                         "0000";
  std::string report = pkt("unpack ok\n") + pkt("ok refs/heads/main\n") + "0000";
  CHECK(error_of(kReceive, commands + pack_header(7, 1), advertisement()) ==
        "not git receive-pack: pack version 7 is not 2 or 3");
  CHECK(error_of(kReceive, commands + "KCAP" + std::string(100, 'x'), advertisement()) ==
        "not git receive-pack: pack data does not start with PACK");
  CHECK(error_of(kReceive, commands + "tar cf - /etc\n", advertisement()) ==
        "not git receive-pack: pack data does not start with PACK");
  // A million objects in 100 bytes, yet "unpack ok": the stream is not what it claims.
  CHECK(error_of(kReceive, commands + pack_header(2, 1000000) + std::string(88, 'x'),
                 advertisement() + report) ==
        "not git receive-pack: pack of 100 bytes cannot hold the 1000000 objects its header "
        "announces");
  // An honest small pack with the same report is fine.
  std::string honest = pack_header(2, 1) + std::string(40, 'x');
  CHECK(error_of(kReceive, commands + honest, advertisement() + report) == "");
  auto f = make_transfer_follower(kReceive);
  std::vector<FileOperation> out;
  f->from_target(advertisement(), out);
  f->from_user(commands + honest, out);
  f->from_target(report, out);
  f->finish(out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].ok);
  REQUIRE(out[0].git);
  CHECK(out[0].git->refs.at(0).status == "ok");
  CHECK(out[0].git->pack_objects == 1u);
  CHECK(out[0].git->pack_bytes == honest.size());
}

TEST_CASE("bytes held waiting for the other side are bounded") {
  // The target answers a negotiation the user never started: held, up to the cap, then refused.
  auto f = make_transfer_follower(kUpload);
  std::vector<FileOperation> out;
  f->from_target(advertisement(), out);
  std::string nak = pkt("NAK\n");
  for (size_t sent = 0; sent < 4 * TransferFollower::kMaxPending && f->error().empty();
       sent += nak.size())
    f->from_target(nak, out);
  CHECK(f->error().find("bytes held waiting") != std::string::npos);
  REQUIRE(out.size() == 1);
  CHECK(out[0].action == "error");
  // Nothing more after the error, not even at the end.
  f->from_target(std::string(1 << 20, 'x'), out);
  f->finish(out);
  CHECK(out.size() == 1);
}

TEST_CASE("not rsync: a shell's greeting, impossible versions, unknown frames") {
  const std::string exec = "rsync --server -logDtpre.iLsfxCIvu . /x";
  CHECK(error_of(exec, "", "Last login: Tue\n") ==
        "not rsync: protocol version 1953718604 is not between 20 and 40");
  CHECK(error_of(exec, std::string("\x13\x00\x00\x00", 4), "") ==
        "not rsync: protocol version 19 is not between 20 and 40");
  std::string version(std::string("\x20\x00\x00\x00", 4));
  // Flags without CF_VARINT_FLIST_FLAGS although the client said 'v'.
  CHECK(error_of(exec, version, version + "\x01") ==
        "not rsync: compatibility flags do not match the client's options");
  // A good handshake, then a frame tagged 6 (below MPLEX_BASE).
  Capture up = capture("rsync-up");
  std::string handshake = up.from_target.substr(0, 4 + 2 + 1 + 35 + 4);
  CHECK(error_of(exec, version, handshake + std::string("\x01\x00\x00\x06", 4)) ==
        "not rsync: multiplexed frame with unknown tag 6");
  CHECK(error_of(exec, version, handshake + std::string("\x01\x00\x00\x07", 4) + "x") == "");
  // An error message frame is rsync, and makes the transfer a failed one.
  auto f = make_transfer_follower(exec);
  std::vector<FileOperation> out;
  f->from_user(version, out);
  f->from_target(handshake + std::string("\x05\x00\x00\x0a", 4) + "oops\n", out);
  f->finish(out);
  REQUIRE(out.size() == 1);
  CHECK_FALSE(out[0].ok);
  CHECK(out[0].status == "oops");
}

TEST_CASE("a channel recording adds git metadata and still records the channel") {
  using nlohmann::json;
  castgate::asciicast::testing::MemorySink sink;
  castgate::ManualClock clock;
  castgate::asciicast::SessionLogOptions opts;
  opts.instance = "gw-1";
  SessionLog log(opts, "s1", Endpoint{"192.0.2.7", 50000}, sink,
                 std::make_shared<castgate::asciicast::Backlog>(1 << 20), clock);
  auto events = [&](std::string_view action) {
    std::vector<json> found;
    for (const auto& line : sink.lines) {
      json j = json::parse(line);
      if (j["event"]["action"] == action) found.push_back(j);
    }
    return found;
  };
  SUBCASE("a real clone: one file.transfer with the refs and the pack") {
    Capture c = capture("clone-v0");
    ChannelRecording rec(log, 0, clock, nullptr);
    ChannelHeader h;
    h.kind = ChannelKind::kExec;
    h.command = c.exec;
    rec.start(h);
    rec.from_user(c.from_user);
    rec.from_target(c.from_target, false);
    rec.from_target("Counting objects: 8\n", true);  // stderr is not followed
    rec.finish();
    auto transfers = events("file.transfer");
    REQUIRE(transfers.size() == 1);
    json& t = transfers[0];
    CHECK(t["file"]["path"] == "/tmp/cap/bare.git");
    CHECK(t["file"]["name"] == "bare.git");
    CHECK(t["castgate"]["file"]["protocol"] == "git");
    CHECK(t["castgate"]["file"]["direction"] == "download");
    CHECK(t["castgate"]["file"]["bytes_read"] == c.from_target.size());
    CHECK(t["castgate"]["file"]["bytes_written"] == c.from_user.size());
    CHECK(t["castgate"]["git"]["service"] == "upload-pack");
    CHECK(t["castgate"]["git"]["advertised_refs"] == 3);
    CHECK(t["castgate"]["git"]["pack_objects"] == 8);
    CHECK(t["castgate"]["git"]["wanted"][0] == "671e83f5a1ee4008fcd5c951080310591910c4df");
    CHECK(t["event"]["outcome"] == "success");
    // The channel itself is recorded as before: the target's bytes are in its output events.
    CHECK_FALSE(events("asciicast.output").empty());
    CHECK(events("asciicast.header").at(0)["castgate"].count("file_transfer") == 0);
  }
  SUBCASE("data that is not git: one file.error, nothing after it, output recorded") {
    ChannelRecording rec(log, 0, clock, nullptr);
    ChannelHeader h;
    h.kind = ChannelKind::kExec;
    h.command = "git-upload-pack '/srv/r.git'";
    rec.start(h);
    rec.from_target("Welcome to db1\n", false);
    rec.from_target(advertisement(), false);
    rec.finish();
    auto errors = events("file.error");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["castgate"]["file"]["status"] == "not git upload-pack: not a pkt-line length");
    CHECK(errors[0]["event"]["outcome"] == "failure");
    CHECK(events("file.transfer").empty());
    std::string output;
    for (auto& e : events("asciicast.output")) output += e["asciicast"]["event"][2];
    CHECK(output.find("Welcome to db1") != std::string::npos);
  }
  SUBCASE("with a pty it is a terminal, not a transfer") {
    ChannelRecording rec(log, 0, clock, nullptr);
    ChannelHeader h;
    h.kind = ChannelKind::kExec;
    h.pty = true;
    h.command = "git-upload-pack '/srv/r.git'";
    rec.start(h);
    rec.from_target("Welcome to db1\n", false);
    rec.finish();
    CHECK(events("file.error").empty());
    CHECK(events("file.transfer").empty());
  }
}

TEST_CASE("what is kept for the record is capped; the counts are not") {
  std::string commands, report = pkt("unpack ok\n");
  for (int i = 0; i < 20; ++i) {
    std::string ref = "refs/tags/t" + std::to_string(i);
    commands += pkt(oid('a') + " " + std::string(40, '0') + " " + ref +
                    (i == 0 ? std::string(1, '\0') + "report-status delete-refs\n" : "\n"));
    report += pkt("ok " + ref + "\n");
  }
  auto f = make_transfer_follower(kReceive);
  std::vector<FileOperation> out;
  f->from_target(advertisement(), out);
  f->from_user(commands + "0000", out);
  f->from_target(report + "0000", out);
  f->finish(out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].ok);
  REQUIRE(out[0].git);
  CHECK(out[0].git->ref_updates == 20);
  REQUIRE(out[0].git->refs.size() == 8);
  for (const auto& r : out[0].git->refs) CHECK(r.status == "ok");

  std::string wants;
  for (int i = 0; i < 20; ++i)
    wants += pkt("want " + std::string(39, 'a') + static_cast<char>('0' + i % 10) +
                 (i == 0 ? " side-band-64k\n" : "\n"));
  f = make_transfer_follower(kUpload);
  out.clear();
  f->from_target(advertisement(), out);
  f->from_user(wants + "0000" + pkt("done\n"), out);
  f->from_target(pkt("NAK\n") + pkt("\x01" + pack_header(2, 0) + std::string(20, 's')) + "0000",
                 out);
  f->finish(out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].ok);
  REQUIRE(out[0].git);
  CHECK(out[0].git->wants == 20);
  CHECK(out[0].git->wanted.size() == 8);
  CHECK(out[0].git->pack_objects == 0u);
}

TEST_CASE("git v2: object-info and ls-refs answers, in order") {
  std::string target = pkt("version 2\n") + pkt("agent=git/2.39.5\n") + pkt("ls-refs=unborn\n") +
                       pkt("fetch=shallow wait-for-done\n") + pkt("object-info\n") + "0000" +
                       pkt("size\n") + pkt(oid('c') + " 1234\n") + "0000" +
                       pkt(oid('a') + " HEAD symref-target:refs/heads/main\n") +
                       pkt("unborn refs/heads/next\n") + "0000";
  std::string user = pkt("command=object-info\n") + "0001" + pkt("size\n") +
                     pkt("oid " + oid('c') + "\n") + "0000" + pkt("command=ls-refs\n") + "0001" +
                     pkt("symrefs\n") + pkt("unborn\n") + "0000" + "0000";
  CHECK(error_of(kUpload, user, target) == "");
  auto f = make_transfer_follower(kUpload);
  std::vector<FileOperation> out;
  f->from_user(user, out);
  f->from_target(target, out);
  f->finish(out);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].git);
  CHECK(out[0].ok);
  CHECK(out[0].git->version == 2);
  CHECK(out[0].git->advertised_refs == 2);
  // An ls-refs answer that is not one.
  CHECK(error_of(kUpload, pkt("command=ls-refs\n") + "0000",
                 pkt("version 2\n") + pkt("ls-refs\n") + "0000" + pkt("rm -rf /\n")) ==
        "not git upload-pack: malformed ls-refs line");
  // An answer to a command never asked: held, then too much.
  auto g = make_transfer_follower(kUpload);
  g->from_target(pkt("version 2\n") + "0000", out);
  for (int i = 0; i < 5000 && g->error().empty(); ++i)
    g->from_target(pkt(oid('a') + " HEAD\n"), out);
  CHECK(g->error().find("bytes held waiting") != std::string::npos);
}
