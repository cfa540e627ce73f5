// A temporary file for the player's tests: written with the given bytes, removed when the test
// ends.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace castgate::player::testing {

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& bytes = "") {
    char name[] = "/tmp/castgate-player-test-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~TempFile() { std::remove(path.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string bytes() const {
    std::ostringstream s;
    s << std::ifstream(path, std::ios::binary).rdbuf();
    return s.str();
  }
};

}  // namespace castgate::player::testing
