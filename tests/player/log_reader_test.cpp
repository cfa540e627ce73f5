#include "player/log_reader.h"

#include <doctest/doctest.h>

#include <string>

#include "tests/player/temp_file.h"

using namespace castgate::player;

using castgate::player::testing::TempFile;

TEST_CASE("census: lines that can be castgate events, in every stored shape, and the others") {
  TempFile f(
      "{\"@timestamp\":\"2026-11-30T00:00:00Z\",\"castgate\":{\"seq\":0}}\n"   // raw
      "{\"log\":\"{\\\"@timestamp\\\":\\\"x\\\",\\\"castgate\\\":{}}\\n\"}\n"  // docker
      "2026-11-30T00:00:00.000000000Z stdout F {\"castgate\":{}}\n"            // CRI
      "\n"                                                                     // empty
      "cast cast castgat castgatX\n"                                           // near misses
      "{\"@timestamp\":\"2026-11-30T00:00:00Z\",\"castgate\":{\"seq\":1\n"     // cut short
      "kernel: something else\n"
      "{\"kubernetes\":{\"pod\":\"c\"},\"event\":{},\"castgate\":{}}");  // no final newline
  MappedFile m(f.path);
  auto c = census(m);
  CHECK(c.lines == 7);
  CHECK(c.candidates == 4);
  CHECK(c.others() == 3);
  CHECK(c.first_other == 5);  // numbered as in the file; the empty line is not counted as "other"
}

TEST_CASE("census: an empty file and a file of one word") {
  TempFile empty("");
  CHECK(census(MappedFile(empty.path)).lines == 0);
  TempFile word("{castgate}");
  auto c = census(MappedFile(word.path));
  CHECK(c.lines == 1);
  CHECK(c.candidates == 1);
  TempFile short_line("castgat");
  CHECK(census(MappedFile(short_line.path)).others() == 1);
}
