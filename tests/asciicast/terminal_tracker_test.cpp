#include "asciicast/terminal_tracker.h"

#include <doctest/doctest.h>

using castgate::asciicast::TerminalTracker;

TEST_CASE("a command is read off the screen, without the prompt") {
  TerminalTracker t(80, 24);
  t.output("user@host:~$ ");
  t.input("l");
  t.output("l");
  t.input("s -la\r");
  auto cmds = t.output("s -la\r\ntotal 0\r\nuser@host:~$ ");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "ls -la");
}

TEST_CASE("history recall and line editing give the command as finally shown") {
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("\x1b[A");  // arrow up: the shell redraws the line with the old command
  t.output("echo old-command");
  t.input("\x7f\x7f\x7f\x7f\x7f\x7f\x7fnew\r");  // backspaces and more typing
  t.output("\b\b\b\b\b\b\b       \b\b\b\b\b\b\bnew");
  auto cmds = t.output("\r\n$ ");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "echo old-new");
}

TEST_CASE("tab completion shows the completed word") {
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("cat /etc/hostn\t");
  t.output("cat /etc/hostname ");
  t.input("\r");
  auto cmds = t.output("\r\nvm\r\n$ ");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "cat /etc/hostname");
}

TEST_CASE("a long command that wraps is read whole") {
  TerminalTracker t(20, 10);
  t.output("$ ");
  std::string cmd = "echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  t.input(cmd + "\r");
  t.output(cmd);
  auto cmds = t.output("\r\n");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == cmd);
}

TEST_CASE("what is typed at a password prompt is masked and is no command") {
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("sudo id\r");
  auto cmds = t.output("sudo id\r\n[sudo] password for alice: ");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "sudo id");
  std::string rec;
  rec += t.input("hunter");
  CHECK(t.in_secret());
  rec += t.input("2\r");
  CHECK_FALSE(t.in_secret());
  CHECK(rec == std::string(TerminalTracker::kMask) + "\r");
  cmds = t.output("\r\nuid=0(root)\r\n$ ");
  CHECK(cmds.empty());
}

TEST_CASE("secret prompts are recognised, ordinary ones are not") {
  CHECK(TerminalTracker::looks_like_secret_prompt("Password: "));
  CHECK(TerminalTracker::looks_like_secret_prompt("[sudo] password for alice: "));
  CHECK(TerminalTracker::looks_like_secret_prompt(
      "Enter passphrase for key '/root/.ssh/id_ed25519': "));
  CHECK(TerminalTracker::looks_like_secret_prompt("Enter PIN for 'PIV Card':"));
  CHECK(TerminalTracker::looks_like_secret_prompt("New password:"));
  CHECK(TerminalTracker::looks_like_secret_prompt("Verification code: "));
  CHECK_FALSE(TerminalTracker::looks_like_secret_prompt("user@host:~$ "));
  CHECK_FALSE(TerminalTracker::looks_like_secret_prompt("Opinion: "));
  CHECK_FALSE(TerminalTracker::looks_like_secret_prompt("password: done. next$ "));
}

TEST_CASE("nothing is derived inside a full-screen program") {
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("vim\r");
  auto cmds = t.output("vim\r\n\x1b[?1049h\x1b[H\x1b[2J~\r\n~\r\n");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "vim");
  CHECK(t.alt_screen());
  t.input(":wq\r");
  cmds = t.output(":wq\r\n\x1b[?1049l");
  CHECK(cmds.empty());
  CHECK_FALSE(t.alt_screen());
}
