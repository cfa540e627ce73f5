// The pieces of a configuration reload that run without a gateway: reading a rule set whole (or
// not at all), its digest, the files' stamps, the metrics places of retired workers, and the
// parent's kRetire message.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/config_file.h"
#include "common/worker_metrics.h"
#include "gateway/context.h"
#include "gateway/gateway.h"
#include "gateway/rule_set.h"
#include "gateway/worker_channel.h"

using namespace castgate;
namespace fs = std::filesystem;

namespace {

struct Dir {
  fs::path path;
  Dir() {
    char tmpl[] = "/tmp/castgate-reload-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~Dir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    auto tmp = path / (name + ".new");
    std::ofstream(tmp) << text;
    fs::rename(tmp, path / name);  // as an editor does: another inode
    return (path / name).string();
  }
};

struct Files {
  Dir dir;
  GatewayConfig config;
  Files() {
    config.targets_file =
        dir.write("targets.json", R"({"targets": [{"name": "db1.int", "host": "10.0.0.5"}]})");
    config.policy_file = dir.write(
        "policy.json",
        R"({"rules": [{"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": ["root"]}]})");
    config.known_hosts_file =
        dir.write("known_hosts",
                  "db1.int ssh-ed25519 "
                  "AAAAC3NzaC1lZDI1NTE5AAAAIGlgYTN/KSaaVvn4jgsl2ssWFbSWe1DceErlXfeBK+n3\n");
  }
};

}  // namespace

TEST_CASE("reload: a rule set is read whole, with a digest of its files' bytes") {
  Files f;
  auto a = load_rule_set(f.config, true);
  CHECK(a.targets.find("db1.int"));
  CHECK(a.digest.size() == 64);
  REQUIRE(a.files.size() == 3);
  CHECK(a.files[1].option == "--policy");
  CHECK(a.files[1].sha256.size() == 64);
  CHECK_FALSE(rule_files_changed(a.files));
  // The same bytes again: the same digest, even in a new file.
  f.dir.write(
      "policy.json",
      R"({"rules": [{"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": ["root"]}]})");
  CHECK(rule_files_changed(a.files));
  CHECK(load_rule_set(f.config, true).digest == a.digest);
  f.dir.write("policy.json", R"({"rules": []})");
  CHECK(load_rule_set(f.config, true).digest != a.digest);
}

TEST_CASE("reload: a bad file refuses the whole set, naming the file") {
  Files f;
  f.dir.write("targets.json", R"({"targets": [{"name": "db1.int", "hots": "x"}]})");
  CHECK_THROWS_WITH_AS(load_rule_set(f.config, true), doctest::Contains("targets.json"),
                       std::runtime_error);
  Files g;
  // A target needs the user CA or a static key of its own, which must be readable.
  CHECK_THROWS_WITH_AS(load_rule_set(g.config, false), doctest::Contains("needs the user CA"),
                       std::runtime_error);
  g.dir.write("targets.json",
              R"({"targets": [{"name": "db1.int", "host": "h", "static_key": "/nonexistent/k"}]})");
  CHECK_THROWS_WITH_AS(load_rule_set(g.config, true), doctest::Contains("/nonexistent/k"),
                       std::runtime_error);
  // A listener for a target keeps it.
  Files h;
  ListenSpec bound;
  bound.address = "127.0.0.1";
  bound.port = 2301;
  bound.target = "web1.int";
  h.config.listens.push_back(bound);
  CHECK_THROWS_WITH_AS(load_rule_set(h.config, true), doctest::Contains("web1.int"),
                       std::runtime_error);
}

TEST_CASE("reload: configuration files are read without blocking, regular and bounded") {
  Dir d;
  auto fifo = (d.path / "fifo").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(read_config_file(fifo, 1024), doctest::Contains("not a regular file"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(read_config_file(d.path.string(), 1024),
                       doctest::Contains("not a regular file"), std::runtime_error);
  auto big = d.write("big", std::string(2048, 'x'));
  CHECK_THROWS_WITH_AS(read_config_file(big, 1024), doctest::Contains("is over"),
                       std::runtime_error);
  CHECK(read_config_file(big, 4096).size() == 2048);
  CHECK_THROWS_WITH_AS(read_config_file((d.path / "gone").string(), 1024),
                       doctest::Contains("cannot read"), std::runtime_error);
  // Stamps: a path that is gone has none; a rewrite in place changes it too.
  CHECK_FALSE(FileStamp::of((d.path / "gone").string()).exists());
  auto before = FileStamp::of(big);
  { std::ofstream(big, std::ios::app) << "y"; }
  CHECK_FALSE(FileStamp::of(big) == before);
}

TEST_CASE("reload: only the parent's kRetire, with nothing after it") {
  worker_channel::Message m;
  m.type = worker_channel::Type::kRetire;
  auto packet = worker_channel::encode(m);
  CHECK(packet == std::string("\x04", 1));
  auto back = worker_channel::decode(packet);
  REQUIRE(back);
  CHECK(back->type == worker_channel::Type::kRetire);
  CHECK_FALSE(worker_channel::decode(std::string("\x04\x00", 2)));
  CHECK_FALSE(worker_channel::decode(std::string("\x05", 1)));
}

TEST_CASE("reload: a retired worker's counts stay, and its place is reused") {
  MetricTotals totals(2);
  size_t successor = totals.add();
  CHECK(successor == 2);
  MetricValues v{};
  v[metric_index(Metric::kConnections)] = 7;
  totals.observe(0, v);  // the retiring one
  totals.observe(successor, v);
  totals.release(0);  // it ended
  CHECK(totals.totals()[metric_index(Metric::kConnections)] == 14);
  CHECK(totals.add() == 0);  // its place, empty
  CHECK(totals.totals()[metric_index(Metric::kConnections)] == 14);
  CHECK(totals.add() == 3);
}

TEST_CASE("reload: the parent may read the rules' directories again, never the signer's keys'") {
  Dir rules, keys;
  GatewayContext ctx;
  ctx.config.user_ca_key_file = keys.write("user_ca", "key");
  RuleFile policy;
  policy.path = rules.write("policy.json", "{}");
  RuleFile beside_key;
  beside_key.path = keys.write("targets.json", "{}");
  RuleFile above_key;  // a directory that holds the keys' directory
  above_key.path = (keys.path.parent_path() / "known_hosts").string();
  ctx.rule_files = {policy, beside_key, above_key};
  auto readable = parent_readable(ctx).readable;
  CHECK(std::find(readable.begin(), readable.end(), rules.path.string()) != readable.end());
  CHECK(std::find(readable.begin(), readable.end(), keys.path.string()) == readable.end());
  CHECK(std::find(readable.begin(), readable.end(), keys.path.parent_path().string()) ==
        readable.end());
  // Relative paths and ".." are resolved before they are compared.
  RuleFile sneaky;
  sneaky.path = (rules.path / ".." / keys.path.filename() / "policy.json").string();
  ctx.rule_files = {sneaky};
  readable = parent_readable(ctx).readable;
  CHECK(std::find(readable.begin(), readable.end(), keys.path.string()) == readable.end());
}
