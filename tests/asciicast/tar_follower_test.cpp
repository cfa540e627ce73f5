// The tar follower on real archives written by GNU tar 1.34 (tests/asciicast/data/transfers:
// gnu.tar and pax.tar hold a 150-character name, a symlink, a hard link, a directory, a
// dotfile; ustar.tar a path split into prefix and name), fed in pieces of every awkward size.
#include "asciicast/tar_follower.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

using castgate::asciicast::FileOperation;
using castgate::asciicast::TarFollower;

namespace {

std::string archive(const std::string& name) {
  std::ifstream in(std::string(CASTGATE_SOURCE_DIR) + "/tests/asciicast/data/transfers/" + name,
                   std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  REQUIRE(!s.str().empty());
  return s.str();
}

std::vector<FileOperation> follow(std::string_view data, size_t piece, TarFollower& t) {
  std::vector<FileOperation> ops;
  for (size_t at = 0; at < data.size(); at += piece) t.feed(data.substr(at, piece), ops);
  t.finish(ops);
  return ops;
}

std::string describe(const std::vector<FileOperation>& ops) {
  std::string s;
  for (const auto& o : ops) {
    s += o.action + " " + o.path;
    if (!o.target_path.empty()) s += " -> " + o.target_path;
    if (o.size) s += " " + std::to_string(*o.size);
    if (!o.status.empty()) s += " (" + o.status + ")";
    s += "\n";
  }
  return s;
}

const std::string kLong(150, 'l');

}  // namespace

TEST_CASE("members of GNU, pax and ustar archives, whatever the pieces they arrive in") {
  for (std::string name : {"gnu.tar", "pax.tar"}) {
    CAPTURE(name);
    std::string data = archive(name);
    std::string expected;
    for (size_t piece :
         {size_t{1}, size_t{7}, size_t{511}, size_t{512}, size_t{4096}, data.size()}) {
      CAPTURE(piece);
      TarFollower t("/srv");
      auto ops = follow(data, piece, t);
      CHECK(t.error().empty());
      CHECK(t.ended());
      std::string got = describe(ops);
      if (expected.empty()) expected = got;
      CHECK(got == expected);
      CHECK(got.find("transfer /srv/.bashrc 3\n") != std::string::npos);
      CHECK(got.find("transfer /srv/dir/" + kLong + " 5\n") != std::string::npos);
      CHECK(got.find("symlink /srv/dir/sub/link -> ../a.txt\n") != std::string::npos);
      CHECK(got.find("transfer /srv/dir/sub/r.bin 3000\n") != std::string::npos);
      CHECK(got.find("mkdir /srv/dir/sub\n") != std::string::npos);
      CHECK(got.find("hardlink /srv/dir/") != std::string::npos);
      for (const auto& o : ops) {
        CHECK(o.protocol == "tar");
        CHECK(o.direction == "upload");
        REQUIRE(o.mode);
      }
    }
  }
  TarFollower t(".");
  auto ops = follow(archive("ustar.tar"), 100, t);
  CHECK(t.error().empty());
  std::string got = describe(ops);
  CHECK(got.find("transfer .bashrc 3\n") != std::string::npos);  // "." adds no prefix
  CHECK(got.find("/component12/f.txt 5\n") != std::string::npos);
  CHECK(got.find("transfer dir/component01/component02/") != std::string::npos);
}

TEST_CASE("what is not tar stops the follower with one error") {
  std::string data = archive("gnu.tar");
  SUBCASE("a header whose checksum does not match") {
    std::string bad = data;
    bad[512 * 2 + 5] ^= 1;  // a byte of the second member's header
    TarFollower t("/srv");
    auto ops = follow(bad, 4096, t);
    REQUIRE(!ops.empty());
    CHECK(ops.size() == 2);  // the first member, then the error
    CHECK(ops.back().action == "error");
    CHECK(ops.back().status == "not tar: header checksum does not match");
    CHECK(t.error() == ops.back().status);
  }
  SUBCASE("random bytes, text, a compressed archive") {
    for (std::string junk :
         {std::string(2048, '\x5a'), std::string("#!/bin/sh\nrm -rf /\n") + std::string(600, ' '),
          std::string("\x1f\x8b\x08\x00", 4) + std::string(1020, 'x')}) {
      TarFollower t("/srv");
      auto ops = follow(junk, 333, t);
      REQUIRE(ops.size() == 1);
      CHECK(ops[0].action == "error");
      CHECK_FALSE(ops[0].ok);
    }
  }
  SUBCASE("a long name over 64 KiB") {
    std::string header = data.substr(0, 512);
    // The first member of gnu.tar is .bashrc; make a GNU long-name header of it: type 'L',
    // size 100000 (octal 303240), checksum recomputed.
    header[156] = 'L';
    std::snprintf(header.data() + 124, 12, "%011o", 100000);
    std::memset(header.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : header) sum += c;
    std::snprintf(header.data() + 148, 8, "%06o", sum);
    header[154] = '\0';
    header[155] = ' ';
    TarFollower t("/srv");
    auto ops = follow(header + std::string(4096, 'n'), 512, t);
    REQUIRE(ops.size() == 1);
    CHECK(ops[0].status == "not tar: a long name or pax header over 64 KiB");
  }
  SUBCASE("an archive cut short") {
    TarFollower t("/srv");
    auto ops = follow(data.substr(0, 3000), 512, t);
    REQUIRE(!ops.empty());
    CHECK(ops.back().status == "not tar: the archive ended early");
  }
  SUBCASE("nothing at all is no archive and no error") {
    TarFollower t("/srv");
    CHECK(follow("", 1, t).empty());
  }
}
