#include "gateway/ssh_config.h"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace castgate;

namespace {
SshConfigRequest request() {
  SshConfigRequest r;
  r.gateway_host = "gw.corp";
  r.gateway_port = 2222;
  r.target_names = {"db1.int", "db2.int"};
  r.patterns = {"*.int"};
  r.host_keys = {
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK7wwAwye6zQhKje56S0URkPXLibuCEGDVo8sewLGu9y"};
  return r;
}
}  // namespace

TEST_CASE("ssh-config: the block routes targets through the gateway, never the gateway itself") {
  auto block = ssh_config_block(request());
  CHECK(block.find("Host gw.corp\n  HostName gw.corp\n  Port 2222\n") != std::string::npos);
  CHECK(block.find("Host db1.int db2.int *.int !gw.corp\n  ProxyJump gw.corp\n") !=
        std::string::npos);
  CHECK(block.find("StrictHostKeyChecking yes") != std::string::npos);
  // Only the gateway connection is a shared master (see ssh_config.cpp).
  auto targets = block.substr(block.find("Host db1.int"));
  CHECK(targets.find("ControlMaster") == std::string::npos);
  CHECK(block.find("ControlPersist 10m") != std::string::npos);
}

TEST_CASE("ssh-config: known_hosts pins the gateway key for the gateway and every target name") {
  auto known = ssh_known_hosts(request());
  CHECK(known ==
        "[gw.corp]:2222,db1.int,db2.int,*.int ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIK7wwAwye6zQhKje56S0URkPXLibuCEGDVo8sewLGu9y\n");
  auto r = request();
  r.gateway_port = 22;
  CHECK(ssh_known_hosts(r).rfind("gw.corp,db1.int", 0) == 0);
}

TEST_CASE("ssh-config: names that would break the block or the pasted script are refused") {
  // Every value ends up in a shell here-document, ssh_config and known_hosts.
  const char* bad_names[] = {
      "db1 int", "db1.int\nHost *", "$(id)", "a'b", "-oProxyCommand=x", "!db1",
      "db;1",    "db`1`",           ""};
  for (const char* n : bad_names) {
    CAPTURE(n);
    auto r = request();
    r.target_names.push_back(n);
    CHECK_THROWS_AS(ssh_config_script(r), std::runtime_error);
    r = request();
    r.patterns = {n};
    CHECK_THROWS_AS(ssh_config_script(r), std::runtime_error);
    r = request();
    r.gateway_host = n;
    CHECK_THROWS_AS(ssh_config_script(r), std::runtime_error);
  }
  for (const char* d : {"~/x y", "/tmp/$HOME", "relative/dir", "~/.ssh/`x`", "/tmp/a;b"}) {
    CAPTURE(d);
    auto r = request();
    r.dir = d;
    CHECK_THROWS_AS(ssh_config_script(r), std::runtime_error);
  }
  auto r = request();
  r.host_keys = {"ssh-ed25519 AAAA\nCASTGATE_END"};
  CHECK_THROWS_AS(ssh_config_script(r), std::runtime_error);
  r = request();
  r.control_persist = "10m; rm";
  CHECK_THROWS_AS(ssh_config_script(r), std::runtime_error);
  r = request();
  r.target_names.clear();
  r.patterns.clear();
  CHECK_THROWS_AS(ssh_config_script(r), std::runtime_error);
}

TEST_CASE("ssh-config: the script writes both files and includes the block once") {
  auto script = ssh_config_script(request());
  CHECK(script.find("cat > ~/.ssh/castgate/known_hosts <<'CASTGATE_END'\n") != std::string::npos);
  CHECK(script.find("cat > ~/.ssh/castgate/config <<'CASTGATE_END'\n") != std::string::npos);
  CHECK(script.find("grep -qx 'Include ~/.ssh/castgate/config' ~/.ssh/config ||") !=
        std::string::npos);
}
