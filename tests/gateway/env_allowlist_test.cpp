// The environment a client may set on a target: the "env" globs, minus the variables that would
// make the target run code of the user's choosing, whatever the globs say.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gateway/targets.h"

using namespace castgate;

namespace {

Target with_env(std::vector<std::string> patterns) {
  Target t;
  t.name = "db1.int";
  t.env_allow = std::move(patterns);
  return t;
}

const char* const kDangerous[] = {"LD_PRELOAD",
                                  "LD_LIBRARY_PATH",
                                  "LD_AUDIT",
                                  "DYLD_INSERT_LIBRARIES",
                                  "GLIBC_TUNABLES",
                                  "GCONV_PATH",
                                  "BASH_ENV",
                                  "ENV",
                                  "PROMPT_COMMAND",
                                  "SHELLOPTS",
                                  "BASHOPTS",
                                  "PS4",
                                  "IFS",
                                  "PATH",
                                  "TMOUT",
                                  "PERL5LIB",
                                  "PERL5OPT",
                                  "PYTHONPATH",
                                  "PYTHONSTARTUP",
                                  "RUBYOPT",
                                  "NODE_OPTIONS",
                                  "JAVA_TOOL_OPTIONS",
                                  "LESSOPEN",
                                  "BASH_FUNC_ls"};

}  // namespace

TEST_CASE("no env pattern passes a variable that runs code on the target") {
  for (auto patterns : std::vector<std::vector<std::string>>{
           {"*"}, {"LD_*"}, {"*_*"}, {"?*"}, {"BASH_ENV", "PATH", "IFS", "PS4", "TMOUT"}}) {
    auto t = with_env(patterns);
    for (const char* name : kDangerous) {
      CAPTURE(patterns[0]);
      CAPTURE(name);
      CHECK_FALSE(t.env_allowed(name));
    }
  }
  auto everything = with_env({"*"});
  CHECK(everything.env_allowed("LANG"));
  CHECK(everything.env_allowed("LC_ALL"));
  CHECK(everything.env_allowed("TERM"));
  CHECK(everything.env_allowed("EDITOR"));
  // Near misses of denied names are ordinary variables.
  CHECK(everything.env_allowed("LDAP_URI"));
  CHECK(everything.env_allowed("ENVIRONMENT"));
  CHECK(everything.env_allowed("MY_PATH"));
  // Exported bash functions travel as BASH_FUNC_name%%; a name holding '=' could set another
  // variable on a server that writes "name=value" as it comes. Only plain names pass.
  for (const char* name : {"BASH_FUNC_ls%%", "LANG=C LD_PRELOAD", "BASH_ENV=/tmp/x", "", "1ABC",
                           "A B", "A-B", "A\nB"}) {
    CAPTURE(name);
    CHECK_FALSE(everything.env_allowed(name));
  }
  CHECK_FALSE(everything.env_allowed(std::string(257, 'A')));
  // The default list is unaffected.
  auto defaults = with_env({"LANG", "LC_*", "TERM"});
  CHECK(defaults.env_allowed("LC_CTYPE"));
  CHECK_FALSE(defaults.env_allowed("LD_PRELOAD"));
}

TEST_CASE("patterns that would match a denied variable are named for the start-up warning") {
  CHECK(with_env({"LANG", "LC_*", "TERM"}).env_patterns_matching_never_passed().empty());
  CHECK(with_env({"CASTGATE_TEST_*", "EDITOR", "LD"}).env_patterns_matching_never_passed().empty());
  auto all = with_env({"*"}).env_patterns_matching_never_passed();
  CHECK(all.size() == kEnvNeverPassed.size());
  CHECK(with_env({"LD_*"}).env_patterns_matching_never_passed() ==
        std::vector<std::string_view>{"LD_*"});
  // Globs that overlap a denied glob without containing it.
  CHECK(with_env({"L?_A*"}).env_patterns_matching_never_passed() ==
        std::vector<std::string_view>{"LD_*"});
  CHECK(with_env({"B*_FUNC_x"}).env_patterns_matching_never_passed() ==
        std::vector<std::string_view>{"BASH_FUNC_*"});
  CHECK(with_env({"P*H"}).env_patterns_matching_never_passed() ==
        std::vector<std::string_view>{"PATH", "PYTHONPATH"});
  CHECK(with_env({"*ENV"}).env_patterns_matching_never_passed() ==
        std::vector<std::string_view>{"LD_*", "DYLD_*", "BASH_ENV", "ENV", "BASH_FUNC_*"});
  CHECK(with_env({"?ENV", "PS?", "SHELL*"}).env_patterns_matching_never_passed() ==
        std::vector<std::string_view>{"SHELLOPTS", "PS4"});
  CHECK(with_env({"?"}).env_patterns_matching_never_passed().empty());
  // Parsing the configuration warns and goes on: not an error.
  auto targets = Targets::parse(R"({"targets": [{"name": "db1.int", "env": ["*"]}]})", "t");
  REQUIRE(targets.find("db1.int"));
  CHECK_FALSE(targets.find("db1.int")->env_allowed("LD_PRELOAD"));
  CHECK(targets.find("db1.int")->env_allowed("LANG"));
}
