// parse_config: the command line, CASTGATE_* variables and the --config file, and the message a
// bad setting stops start-up with. Where two settings are bad, the test names the one reported:
// deployments see that message, and it must not change with the code's layout.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gateway/config.h"

using namespace castgate;
using namespace std::chrono_literals;

namespace {

std::optional<GatewayConfig> parse_castgate_args(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"castgate"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_config(static_cast<int>(argv.size()), argv.data());
}

std::string config_refusal(const std::vector<std::string>& args) {
  try {
    parse_castgate_args(args);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(accepted)";
}

struct ConfigRefusalCase {
  std::vector<std::string> args;
  std::string refusal;
};

void check_config_refusals(const std::vector<ConfigRefusalCase>& cases) {
  for (const auto& c : cases) {
    std::string line;
    for (const auto& a : c.args) line += a + " ";
    CAPTURE(line);
    CHECK(config_refusal(c.args) == c.refusal);
  }
}

// A CASTGATE_* variable for one test.
struct ScopedCastgateVariable {
  ScopedCastgateVariable(const char* variable, const char* value) : name(variable) {
    setenv(variable, value, 1);
  }
  ~ScopedCastgateVariable() { unsetenv(name); }
  ScopedCastgateVariable(const ScopedCastgateVariable&) = delete;
  ScopedCastgateVariable& operator=(const ScopedCastgateVariable&) = delete;
  const char* name;
};

}  // namespace

TEST_CASE("parse_config: the defaults") {
  auto c = parse_castgate_args({});
  REQUIRE(c);
  CHECK(c->listens.empty());
  CHECK_FALSE(c->health_listen);
  CHECK(c->log_level == "info");
  CHECK(c->certificate_validity == 300s);
  CHECK(c->max_certificate_validity == 3600s);
  CHECK(c->preauth_timeout == 30s);
  CHECK(c->idle_timeout == 0s);
  CHECK(c->session_end_warning == 300s);
  CHECK(c->jump_idle_timeout == 600s);
  CHECK(c->shutdown_grace == 30s);
  CHECK(c->connect_timeout == 10s);
  CHECK(c->recording_stall_limit == 10s);
  CHECK(c->checkpoint_interval == 60s);
  CHECK(c->max_startups_start == 64);
  CHECK(c->max_startups_rate == 30);
  CHECK(c->max_unauthenticated == 256);
  CHECK(c->per_source_max_startups == 16);
  CHECK(c->max_channel_buffer == 4u << 20);
  CHECK(c->worker_processes == 2);
  CHECK(c->workers >= 1);  // 0 means CPUs / processes, at least 1
  CHECK(c->max_line == 8192);
  CHECK(c->default_alerts);
  CHECK(c->recording_enabled);
  CHECK_FALSE(c->searchable_text);
  CHECK_FALSE(c->print_ssh_config);
}

TEST_CASE("parse_config: settings reach the configuration") {
  auto c = parse_castgate_args({"--listen",
                                "127.0.0.1:2222",
                                "--listen",
                                "[::1]:0=db",
                                "--health-listen",
                                "0.0.0.0:8080",
                                "--host-key",
                                "a",
                                "--host-key",
                                "b",
                                "--max-startups",
                                "10:50:100",
                                "--max-unauthenticated",
                                "5",
                                "--workers",
                                "3",
                                "--no-default-alerts",
                                "--searchable-text",
                                "--idle-timeout",
                                "2m",
                                "--benchmark-disable-recording",
                                "--log-level",
                                "warn"});
  REQUIRE(c);
  REQUIRE(c->listens.size() == 2);
  CHECK(c->listens[0].text() == "127.0.0.1:2222");
  CHECK(c->listens[1].address == "::1");
  CHECK(c->listens[1].target == "db");
  REQUIRE(c->health_listen);
  CHECK(c->health_listen->port == 8080);
  CHECK(c->host_key_files == std::vector<std::string>{"a", "b"});
  CHECK(c->max_startups_rate == 50);
  CHECK(c->max_unauthenticated == 5);
  CHECK(c->max_startups_start == 5);  // never above FULL
  CHECK(c->workers == 3);
  CHECK_FALSE(c->default_alerts);
  CHECK(c->searchable_text);
  CHECK(c->idle_timeout == 120s);
  CHECK_FALSE(c->recording_enabled);
  CHECK(c->log_level == "warn");
}

TEST_CASE("parse_config: ssh-config settings") {
  auto c = parse_castgate_args({"--print-ssh-config", "--gateway", "gw.example.com:2222",
                                "--domain", "*.int", "--format", "known-hosts", "--dir", "/x"});
  REQUIRE(c);
  CHECK(c->print_ssh_config);
  CHECK(c->ssh_config.gateway_host == "gw.example.com");
  CHECK(c->ssh_config.gateway_port == 2222);
  CHECK(c->ssh_config.patterns == std::vector<std::string>{"*.int"});
  CHECK(c->ssh_config.dir == "/x");
  CHECK(c->ssh_config.control_persist == "10m");
  CHECK(c->ssh_config_part == SshConfigPart::kKnownHosts);
  c = parse_castgate_args({"--print-ssh-config", "--gateway", "gw", "--format", "config"});
  REQUIRE(c);
  CHECK(c->ssh_config.gateway_host == "gw");
  CHECK(c->ssh_config_part == SshConfigPart::kConfig);
  c = parse_castgate_args({"--print-ssh-config", "--gateway", "gw"});
  REQUIRE(c);
  CHECK(c->ssh_config_part == SshConfigPart::kScript);
}

TEST_CASE("parse_config: each bad setting's message") {
  check_config_refusals({
      {{"--listen", "nocolon"}, "--listen nocolon: expected ADDRESS:PORT[=TARGET]"},
      {{"--listen", "h:99999"}, "--listen h:99999: bad port"},
      {{"--health-listen", ":80"}, "--listen :80: missing address"},
      {{"--banner-file", "/nonexistent/banner"},
       "cannot read /nonexistent/banner: No such file or directory"},
      {{"--certificate-validity", "xyz"}, "--certificate-validity: not a duration: xyz"},
      {{"--shutdown-grace", "bad"}, "--shutdown-grace: not a duration: bad"},
      {{"--checkpoint-interval", "bad"}, "--checkpoint-interval: not a duration: bad"},
      {{"--jump-idle-timeout", "0"}, "--jump-idle-timeout must be at least 1s"},
      {{"--checkpoint-interval", "0"}, "--checkpoint-interval must be between 1s and 1h"},
      {{"--checkpoint-interval", "2h"}, "--checkpoint-interval must be between 1s and 1h"},
      {{"--max-startups", "1:2"}, "--max-startups 1:2: expected START:RATE:FULL"},
      {{"--max-startups", "5:200:3"},
       "--max-startups 5:200:3: need START <= FULL, FULL >= 1 and RATE <= 100"},
      {{"--print-ssh-config"},
       "ssh-config needs --gateway HOST[:PORT] (the name users connect to)"},
      {{"--print-ssh-config", "--gateway", "gw:x"}, "--gateway: bad port in gw:x"},
      {{"--print-ssh-config", "--gateway", "gw:22x"}, "--gateway: bad port in gw:22x"},
      {{"--print-ssh-config", "--gateway", "gw", "--format", "json"},
       "--format must be script, config or known-hosts"},
      {{"--certificate-validity", "9s"}, "--certificate-validity must be at least 10s"},
      {{"--certificate-validity", "2h"},
       "--certificate-validity is longer than --max-certificate-validity"},
      {{"--preauth-timeout", "0"}, "--preauth-timeout must be at least 1s"},
      {{"--connect-timeout", "0"}, "--connect-timeout must be at least 1s"},
      {{"--max-line", "4095"}, "--max-line must be between 4096 and 65536"},
      {{"--max-line", "65537"}, "--max-line must be between 4096 and 65536"},
      {{"--max-unauthenticated", "0"}, "--max-unauthenticated must be positive"},
      {{"--per-source-max-startups", "0"}, "--per-source-max-startups must be positive"},
      {{"--device-sign-in-rate", "0"}, "--device-sign-in-rate must be positive"},
      {{"--max-token-attempts", "0"}, "--max-token-attempts must be positive"},
      {{"--max-channel-buffer", "2097151"},
       "--max-channel-buffer must be at least 2 MiB (libssh's window is 1.28 MB)"},
      {{"--max-pending-requests", "3"}, "--max-pending-requests must be >= 4"},
      {{"--max-env", "-1"}, "--max-env must not be negative"},
      {{"--max-env-size", "63"}, "--max-env-size must be at least 64"},
      {{"--max-terminal-cells", "1919"}, "--max-terminal-cells must be at least 1920 (80x24)"},
      {{"--max-request-rate", "0"}, "--max-request-rate must be positive"},
      {{"--max-channels", "0"}, "--max-channels must be positive"},
      {{"--workers", "-1"}, "--workers must be 0..256"},
      {{"--workers", "257"}, "--workers must be 0..256"},
      {{"--worker-processes", "0"}, "--worker-processes must be 1..64"},
      {{"--worker-processes", "65"}, "--worker-processes must be 1..64"},
      {{"--max-retired-workers", "0"}, "--max-retired-workers must be 1..1024"},
      {{"--max-retired-workers", "1025"}, "--max-retired-workers must be 1..1024"},
      {{"--log-level", "loud"}, "--log-level must be debug, info, warn or error"},
      {{"--no-such-option"}, "unrecognised option '--no-such-option'"},
      {{"--workers", "abc"}, "the argument ('abc') for option '--workers' is invalid"},
  });
  // The limits themselves are accepted.
  CHECK(config_refusal({"--max-line",
                        "4096",
                        "--max-channel-buffer",
                        "2097152",
                        "--max-env",
                        "0",
                        "--max-env-size",
                        "64",
                        "--max-terminal-cells",
                        "1920",
                        "--certificate-validity",
                        "10s",
                        "--jump-idle-timeout",
                        "1s",
                        "--checkpoint-interval",
                        "1h",
                        "--workers",
                        "256",
                        "--worker-processes",
                        "64",
                        "--max-retired-workers",
                        "1024",
                        "--max-pending-requests",
                        "4"}) == "(accepted)");
}

TEST_CASE("parse_config: of two bad settings, the one reported first stays so") {
  check_config_refusals({
      {{"--jump-idle-timeout", "0", "--shutdown-grace", "bad"},
       "--jump-idle-timeout must be at least 1s"},
      {{"--checkpoint-interval", "2h", "--max-startups", "1:2"},
       "--checkpoint-interval must be between 1s and 1h"},
      {{"--max-startups", "1:2", "--print-ssh-config"},
       "--max-startups 1:2: expected START:RATE:FULL"},
      {{"--print-ssh-config", "--certificate-validity", "5s"},
       "ssh-config needs --gateway HOST[:PORT] (the name users connect to)"},
      {{"--certificate-validity", "5s", "--max-line", "10", "--log-level", "x"},
       "--certificate-validity must be at least 10s"},
      {{"--connect-timeout", "0", "--max-line", "10"}, "--connect-timeout must be at least 1s"},
      {{"--max-line", "10", "--max-unauthenticated", "0"},
       "--max-line must be between 4096 and 65536"},
      {{"--max-token-attempts", "0", "--max-channel-buffer", "1"},
       "--max-token-attempts must be positive"},
      {{"--max-channels", "0", "--workers", "999"}, "--max-channels must be positive"},
      {{"--max-retired-workers", "0", "--log-level", "x"}, "--max-retired-workers must be 1..1024"},
      {{"--listen", "x", "--banner-file", "/nonexistent/banner"},
       "--listen x: expected ADDRESS:PORT[=TARGET]"},
      {{"--banner-file", "/nonexistent/banner", "--certificate-validity", "x"},
       "cannot read /nonexistent/banner: No such file or directory"},
  });
}

TEST_CASE("parse_config: the environment and the config file, after the command line") {
  char dir[] = "/tmp/castgate-config-parse-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string path = std::string(dir) + "/castgate.conf";
  std::ofstream(path) << "max-line = 100\nworkers = 7\n";
  {
    ScopedCastgateVariable v("CASTGATE_WORKERS", "5");
    auto c = parse_castgate_args({"--config", path, "--max-line", "5000"});
    REQUIRE(c);
    CHECK(c->max_line == 5000);  // the command line over the file
    CHECK(c->workers == 5);      // the environment over the file
  }
  CHECK(config_refusal({"--config", path}) == "--max-line must be between 4096 and 65536");
  {
    ScopedCastgateVariable v("CASTGATE_MAX_ENV_SIZE", "10");
    CHECK(config_refusal({}) == "--max-env-size must be at least 64");
  }
  std::ofstream(path) << "benchmark-disable-recording = true\n";
  CHECK(config_refusal({"--config", path}) == "unrecognised option 'benchmark-disable-recording'");
  std::ofstream(path) << "a line without equals\n";
  CHECK(config_refusal({"--config", path}) ==
        "the options configuration file contains an invalid line 'a line without equals'");
  unlink(path.c_str());
  rmdir(dir);
  CHECK(config_refusal({"--config", path}) == "cannot read config file " + path);
  {
    ScopedCastgateVariable v("CASTGATE_BENCHMARK_DISABLE_RECORDING", "1");
    CHECK(config_refusal({"--benchmark-disable-recording"}) ==
          "CASTGATE_BENCHMARK_DISABLE_RECORDING: recording can only be switched off on the "
          "command line, for benchmarks; remove this variable");
  }
}

TEST_CASE("parse_config: --help and --version print and end start-up") {
  std::ostringstream printed;
  auto* was = std::cout.rdbuf(printed.rdbuf());
  auto help = parse_castgate_args({"--help", "--workers", "999"});  // not validated
  auto version = parse_castgate_args({"--version"});
  std::cout.rdbuf(was);
  CHECK_FALSE(help);
  CHECK_FALSE(version);
  std::string text = printed.str();
  CHECK(text.rfind("castgate: an SSH gateway that records every session\n\nusage: castgate", 0) ==
        0);
  size_t at = 0;
  for (const char* group :
       {"General:", "Listening and routing:", "Keys and trust:", "Identities and policy:",
        "Limits and timeouts:", "Recording:", "Benchmarks (command line only):",
        "castgate ssh-config (command line only):", "castgate 0.1.0 (libssh"}) {
    CAPTURE(group);
    auto found = text.find(group, at);
    CHECK(found != std::string::npos);
    at = found == std::string::npos ? at : found;
  }
}
