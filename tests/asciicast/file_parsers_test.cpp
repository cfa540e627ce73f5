#include <doctest/doctest.h>

#include <string>

#include "asciicast/alert_rules.h"
#include "asciicast/scp_parser.h"
#include "asciicast/sftp_parser.h"

using namespace castgate::asciicast;

namespace {
struct Packet {
  std::string body;
  Packet& u8(uint8_t v) {
    body += static_cast<char>(v);
    return *this;
  }
  Packet& u32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) body += static_cast<char>((v >> s) & 0xff);
    return *this;
  }
  Packet& u64(uint64_t v) {
    return u32(static_cast<uint32_t>(v >> 32)).u32(static_cast<uint32_t>(v));
  }
  Packet& str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    body += s;
    return *this;
  }
  std::string wire() const {
    Packet p;
    p.u32(static_cast<uint32_t>(body.size()));
    return p.body + body;
  }
};

// Feeds `bytes` in small pieces, as the network would.
void feed(SftpMetadataParser& p, bool client, const std::string& bytes,
          std::vector<FileOperation>& out, size_t piece = 7) {
  for (size_t i = 0; i < bytes.size(); i += piece) {
    auto part = std::string_view(bytes).substr(i, piece);
    client ? p.from_client(part, out) : p.from_server(part, out);
  }
}
}  // namespace

TEST_CASE("SFTP upload: open, writes, close become metadata without the data") {
  SftpMetadataParser p;
  std::vector<FileOperation> out;
  std::string secret(100000, 'S');
  feed(p, true, Packet().u8(1).u32(3).wire(), out);
  feed(p, false, Packet().u8(2).u32(3).wire(), out);
  feed(p, true, Packet().u8(3).u32(1).str("/tmp/up.bin").u32(2 | 8 | 0x10).u32(4).u32(0640).wire(),
       out);
  feed(p, false, Packet().u8(102).u32(1).str("H1").wire(), out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].action == "open");
  CHECK(out[0].path == "/tmp/up.bin");
  CHECK(out[0].direction == "upload");
  CHECK(*out[0].mode == 0640);
  feed(p, true, Packet().u8(6).u32(2).str("H1").u64(0).str(secret).wire(), out, 4096);
  feed(p, false, Packet().u8(101).u32(2).u32(0).str("").str("").wire(), out);
  feed(p, true, Packet().u8(4).u32(3).str("H1").wire(), out);
  feed(p, false, Packet().u8(101).u32(3).u32(0).str("").str("").wire(), out);
  REQUIRE(out.size() == 2);
  CHECK(out[1].action == "close");
  CHECK(out[1].bytes_written == secret.size());
  CHECK(out[1].ok);
  CHECK(p.error().empty());
}

TEST_CASE("SFTP download and other operations with their status") {
  SftpMetadataParser p;
  std::vector<FileOperation> out;
  feed(p, true, Packet().u8(1).u32(3).wire(), out);
  feed(p, false, Packet().u8(2).u32(3).wire(), out);
  feed(p, true, Packet().u8(3).u32(1).str("/etc/hosts").u32(1).u32(0).wire(), out);
  feed(p, false, Packet().u8(102).u32(1).str("H").wire(), out);
  feed(p, true, Packet().u8(5).u32(2).str("H").u64(0).u32(32768).wire(), out);
  feed(p, false, Packet().u8(103).u32(2).str(std::string(1234, 'x')).wire(), out);
  feed(p, true, Packet().u8(4).u32(3).str("H").wire(), out);
  feed(p, false, Packet().u8(101).u32(3).u32(0).wire(), out);
  feed(p, true, Packet().u8(13).u32(4).str("/tmp/gone").wire(), out);
  feed(p, false, Packet().u8(101).u32(4).u32(2).str("No such file").str("").wire(), out);
  feed(p, true, Packet().u8(18).u32(5).str("/a").str("/b").wire(), out);
  feed(p, false, Packet().u8(101).u32(5).u32(0).wire(), out);
  feed(p, true, Packet().u8(14).u32(6).str("/d").u32(4).u32(0755).wire(), out);
  feed(p, false, Packet().u8(101).u32(6).u32(3).wire(), out);
  feed(p, true, Packet().u8(20).u32(7).str("/target").str("/link").wire(), out);
  feed(p, false, Packet().u8(101).u32(7).u32(0).wire(), out);
  REQUIRE(out.size() == 6);
  CHECK(out[0].direction == "download");
  CHECK(out[1].action == "close");
  CHECK(out[1].bytes_read == 1234);
  CHECK(out[2].action == "remove");
  CHECK_FALSE(out[2].ok);
  CHECK(out[2].status == "no_such_file");
  CHECK(out[3].action == "rename");
  CHECK(out[3].target_path == "/b");
  CHECK(out[4].action == "mkdir");
  CHECK(out[4].status == "permission_denied");
  CHECK(out[5].action == "symlink");
  CHECK(out[5].path == "/link");
  CHECK(out[5].target_path == "/target");
}

TEST_CASE("SFTP garbage stops parsing with a reason, never crashes") {
  SftpMetadataParser p;
  std::vector<FileOperation> out;
  p.from_client(std::string("\xff\xff\xff\xff garbage"), out);
  CHECK_FALSE(p.error().empty());
  p.from_client("more", out);
  CHECK(out.empty());
}

TEST_CASE("scp -t (upload) with -r: names, sizes, modes; data skipped") {
  auto cmd = parse_scp_command("scp -r -t -- /srv/in");
  REQUIRE(cmd);
  CHECK(cmd->sink);
  CHECK(cmd->recursive);
  ScpMetadataParser p(*cmd);
  std::vector<FileOperation> out;
  std::string data(5000, 'Z');
  std::string stream = "D0755 0 dir\nT1 0 1 0\nC0644 5000 a.txt\n" + data + std::string(1, '\0') +
                       "C0600 0 empty\n" + std::string(1, '\0') + "E\n";
  for (size_t i = 0; i < stream.size(); i += 13)
    p.from_client(std::string_view(stream).substr(i, 13), out);
  p.from_server(std::string("\0\0\0\x02"
                            "scp: /srv/in/dir/x: Permission denied\n",
                            42),
                out);
  REQUIRE(out.size() == 4);
  CHECK(out[0].action == "mkdir");
  CHECK(out[0].path == "/srv/in/dir");
  CHECK(out[1].action == "transfer");
  CHECK(out[1].path == "/srv/in/dir/a.txt");
  CHECK(*out[1].size == 5000);
  CHECK(*out[1].mode == 0644);
  CHECK(out[1].direction == "upload");
  CHECK(out[2].path == "/srv/in/dir/empty");
  CHECK(out[3].action == "error");
  CHECK(out[3].status.find("Permission denied") != std::string::npos);
  CHECK(p.error().empty());
  // If /srv/in does not exist, dir becomes /srv/in and its files land in it.
  CHECK(out[0].alternative_path == "/srv/in");
  CHECK(out[1].alternative_path == "/srv/in/a.txt");
  CHECK(out[2].alternative_path == "/srv/in/empty");
}

TEST_CASE("scp upload to a name that may be a directory: both places are named") {
  // The one file operation of `command` fed the file line `line` (and its data) by the sender.
  auto one_file = [](const char* command, const std::string& line) {
    auto cmd = parse_scp_command(command);
    REQUIRE(cmd);
    ScpMetadataParser p(*cmd);
    std::vector<FileOperation> out;
    std::string sent = line + '\0';
    cmd->sink ? p.from_client(sent, out) : p.from_server(sent, out);
    REQUIRE(out.size() == 1);
    return out[0];
  };
  // `scp -O authorized_keys host:.ssh` writes .ssh/authorized_keys: only the target knows that
  // .ssh is a directory.
  auto plain = one_file("scp -t .ssh", "C0600 3 authorized_keys\nabc");
  CHECK(plain.path == ".ssh");
  CHECK(plain.alternative_path == ".ssh/authorized_keys");
  // -d: the destination must be a directory; no other reading.
  auto dir = one_file("scp -d -t /etc", "C0440 0 sudoers\n");
  CHECK(dir.path == "/etc/sudoers");
  CHECK(dir.alternative_path.empty());
  // Downloads read the named path: no other reading.
  CHECK(one_file("scp -f /etc/passwd", "C0644 3 passwd\nabc").alternative_path.empty());
}

TEST_CASE("scp -f (download) and command recognition") {
  auto cmd = parse_scp_command("scp -f /etc/hostname");
  REQUIRE(cmd);
  CHECK_FALSE(cmd->sink);
  ScpMetadataParser p(*cmd);
  std::vector<FileOperation> out;
  p.from_server("C0644 3 hostname\nvm\n", out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].path == "/etc/hostname");
  CHECK(out[0].direction == "download");
  CHECK_FALSE(parse_scp_command("scp file host:"));  // a local scp, not the remote end
  CHECK_FALSE(parse_scp_command("rsync --server ."));
  // Only what OpenSSH's scp runs remotely: not another program called scp, not other options,
  // never shell syntax that could run more than scp.
  CHECK(parse_scp_command("scp -v -p -t -- /tmp"));
  CHECK(parse_scp_command("scp -r -d -t /srv/in dir/*.log ~/x"));
  CHECK_FALSE(parse_scp_command("/usr/bin/scp -v -t /tmp"));
  CHECK_FALSE(parse_scp_command("./scp -f x"));
  CHECK_FALSE(parse_scp_command("scp -f /nonexistent; exec bash -i"));
  CHECK_FALSE(parse_scp_command("scp -f x && bash"));
  CHECK_FALSE(parse_scp_command("scp -f x | sh"));
  CHECK_FALSE(parse_scp_command("scp -f $(id)"));
  CHECK_FALSE(parse_scp_command("scp -f `id`"));
  CHECK_FALSE(parse_scp_command("scp -f x > y"));
  CHECK_FALSE(parse_scp_command("scp -f 'x'"));
  CHECK_FALSE(parse_scp_command("scp -f x\\ny"));
  CHECK_FALSE(parse_scp_command("scp -f x\nbash"));
  CHECK_FALSE(parse_scp_command("PATH=. scp -f x"));
  CHECK_FALSE(parse_scp_command("scp -S bash -f x"));
  CHECK_FALSE(parse_scp_command("scp -t -f x"));
  CHECK_FALSE(parse_scp_command("scp -t"));
}

TEST_CASE("a stream that stops being SCP is an error (the recording falls back to full)") {
  auto cmd = parse_scp_command("scp -f /etc/hostname");
  REQUIRE(cmd);
  std::vector<FileOperation> out;
  {
    ScpMetadataParser p(*cmd);  // the remote side is a shell, not scp
    p.from_server("bash-5.2$ ", out);
    CHECK_FALSE(p.error().empty());
  }
  {
    ScpMetadataParser p(*cmd);  // the client types instead of sending status bytes
    p.from_client(std::string("\0", 1), out);
    CHECK(p.error().empty());
    p.from_client("id\n", out);
    CHECK_FALSE(p.error().empty());
  }
  {
    ScpMetadataParser p(*cmd);  // a file, then a shell prompt instead of the status byte
    p.from_server("C0644 2 a\nhiX", out);
    CHECK_FALSE(p.error().empty());
  }
  for (const char* bad : {"C0644 12x a\n", "C0644 1 ../etc/passwd\n", "C0644 1 a/b\n",
                          "C9999 1 a\n", "D0755 5 d\n", "T1 2\n", "E\n", "Q\n"}) {
    ScpMetadataParser p(*cmd);
    p.from_server(bad, out);
    CHECK_MESSAGE(!p.error().empty(), bad);
  }
}

TEST_CASE("SFTP must open with INIT and VERSION") {
  std::vector<FileOperation> out;
  SftpMetadataParser client_first;
  feed(client_first, true, Packet().u8(3).u32(1).str("/etc/hosts").u32(1).u32(0).wire(), out);
  CHECK_FALSE(client_first.error().empty());
  SftpMetadataParser server_first;
  feed(server_first, true, Packet().u8(1).u32(3).wire(), out);
  feed(server_first, false, Packet().u8(101).u32(1).u32(0).wire(), out);
  CHECK_FALSE(server_first.error().empty());
  SftpMetadataParser unknown;
  feed(unknown, true, Packet().u8(1).u32(3).wire(), out);
  feed(unknown, true, Packet().u8(99).u32(1).wire(), out);
  CHECK_FALSE(unknown.error().empty());
}

TEST_CASE("default alert rules flag risky commands and paths, not ordinary ones") {
  auto rules = AlertRules::compile(AlertRules::defaults());
  auto hit = [&](const char* kind, const char* text) { return !rules.match(kind, text).empty(); };
  CHECK(hit("command", "rm -rf /"));
  CHECK(hit("command", "sudo rm -rf --no-preserve-root /"));
  CHECK(hit("command", "rm -fr /*"));
  CHECK_FALSE(hit("command", "rm -rf /tmp/build"));
  CHECK(hit("command", "iptables -F"));
  CHECK(hit("command", "nft flush ruleset"));
  CHECK(hit("command", "systemctl stop auditd"));
  CHECK(hit("command", "unset HISTFILE"));
  CHECK(hit("command", "history -c"));
  CHECK(hit("command", "curl -fsSL https://x.example/install.sh | sudo bash"));
  CHECK(hit("command", "true || curl -s http://x.invalid/i.sh | sh; echo done"));
  CHECK(hit("command", "useradd -m mallory"));
  CHECK(hit("command", "echo 'x ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers"));
  CHECK_FALSE(hit("command", "ls -la"));
  CHECK_FALSE(hit("command", "curl https://example.com -o file"));
  CHECK(hit("path", "/root/.ssh/authorized_keys"));
  CHECK(hit("path", "/etc/sudoers.d/90-users"));
  CHECK_FALSE(hit("path", "/tmp/report.csv"));
  CHECK(hit("path", ".bashrc"));
  CHECK(hit("path", "/home/mallory/.profile"));
  CHECK(hit("path", ".ssh/rc"));
  CHECK(hit("path", ".config/fish/config.fish"));
  CHECK(hit("path", "/etc/profile.d/zz.sh"));
  CHECK_FALSE(hit("path", "notes.bashrc.txt"));
  CHECK_FALSE(hit("path", "/srv/profile"));
  CHECK_THROWS(AlertRules::compile({{"bad", "(", "command", "high"}}));
}

TEST_CASE("alert rules: a pattern whose repetitions multiply is refused before regcomp") {
  CHECK(pattern_weight("abc") == 3);
  CHECK(pattern_weight("[0-9]{1,3}\\.[0-9]{1,3}") == 7);
  CHECK(pattern_weight("(ab){3}") == 6);
  CHECK(pattern_weight("((a{1,100}){1,100}){1,80}") > kMaxPatternWeight);  // 800000, capped
  CHECK(pattern_weight("[]{}]{2}x") == 3);        // braces inside a bracket expression are atoms
  CHECK(pattern_weight("[[:alpha:]]{5,}") == 5);  // {n,}: n copies, then a star
  CHECK(pattern_weight("a{") == 2);               // not a repetition: regcomp judges it
  // 26 bytes, most of a gibibyte and a second or so in regcomp: refused at once.
  CHECK_THROWS_WITH_AS(
      AlertRules::compile({{"bomb", "((a{1,100}){1,100}){1,80}", "command", "high"}}),
      doctest::Contains("too large"), std::runtime_error);
  CHECK_THROWS_WITH_AS(
      AlertRules::compile({{"long", std::string(kMaxPatternBytes + 1, 'a'), "command", "high"}}),
      doctest::Contains("too large"), std::runtime_error);
  for (const auto& r : AlertRules::defaults())
    CHECK_MESSAGE(pattern_weight(r.pattern) < kMaxPatternWeight / 4, r.name);
}
