#include "player/screen_view.h"

#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <vector>

#include "player/follow.h"
#include "player/play.h"

namespace castgate::player {
namespace {

// The escape sequences a frame may hold: castgate's own, nothing else. Returns the first thing
// that is not one of them (an ESC or control byte, a C1 control), or "" if there is none.
std::string foreign_control(const std::string& frame) {
  static const std::regex own(
      R"(^\x1b(\[H|\[2J|\[K|\[\?25l|\[\?25h|\[\?7l|\[\?7h|\[7m|\[0m|\[\d{1,4};\d{1,4}H))");
  for (size_t i = 0; i < frame.size(); ++i) {
    auto b = static_cast<unsigned char>(frame[i]);
    if (b == 0x1b) {
      std::smatch m;
      std::string rest = frame.substr(i, 16);
      if (!std::regex_search(rest, m, own)) return "ESC at " + std::to_string(i) + ": " + rest;
      i += static_cast<size_t>(m.length(0)) - 1;
    } else if (b < 0x20 || b == 0x7f) {
      return "control byte " + std::to_string(b) + " at " + std::to_string(i);
    } else if (b == 0xc2 && i + 1 < frame.size() &&
               static_cast<unsigned char>(frame[i + 1]) < 0xa0) {
      return "C1 control at " + std::to_string(i);
    }
  }
  return "";
}

std::string status_of(const char* user) {
  StatusLine s;
  s.user_name = user;
  s.state = "live";
  return status_text(s);
}

}  // namespace

TEST_CASE("simple output shows as text on the screen") {
  ScreenView view(20, 5);
  view.output("hello\r\nworld $ ");
  CHECK(view.row_text(0, 20) == "hello               ");
  CHECK(view.row_text(1, 20).substr(0, 8) == "world $ ");
  std::string frame = view.frame({40, 10}, status_of("alice"));
  CHECK(foreign_control(frame) == "");
  CHECK(frame.find("hello") != std::string::npos);
  CHECK(frame.find("world $") != std::string::npos);
  CHECK(frame.find("alice") != std::string::npos);
  // Nothing changed: the next frame redraws no row.
  std::string again = view.frame({40, 10}, status_of("alice"));
  CHECK(again.find("hello") == std::string::npos);
  view.output("\x1b[2J\x1b[Hbye");
  again = view.frame({40, 10}, status_of("alice"));
  CHECK(again.find("bye") != std::string::npos);
  CHECK(foreign_control(again) == "");
}

TEST_CASE("hostile output never reaches the analyst's terminal") {
  ScreenView view(80, 24);
  const std::vector<std::string> attacks = {
      "\x1b]0;pwned-title\x07",      // OSC title (BEL)
      "\x1b]2;pwned-title\x1b\\",    // OSC title (ST)
      "\x1b]52;c;cm0gLXJmIH4=\x07",  // OSC 52: write the clipboard
      "\x1bP+q544e\x1b\\",           // DCS (XTGETTCAP)
      "\x1bP$qm\x1b\\",              // DCS (DECRQSS)
      "\xc2\x9b"
      "2J\xc2\x9d"
      "0;c1-title\xc2\x9c",                 // C1 CSI and OSC, as UTF-8
      "\x9b\x32\x4a",                       // raw 8-bit CSI (not UTF-8)
      "\x1b[99999;99999H\x1b[99999C far",   // cursor far outside the screen
      "\x1b[6n\x1b[c\x1b[>c",               // queries that would make a terminal answer
      "\x1b[?1049h\x1b[?1000h\x1b[?2004h",  // alternate screen, mouse, bracketed paste
      std::string("nul\0bel\x07"
                  "del\x7f"
                  "bs\b",
                  14),
      "\x1b#8",  // DECALN fills the screen with E
  };
  for (const auto& a : attacks) {
    view.output(a);
    view.output("visible\r\n");
    std::string frame = view.frame({100, 30}, status_of("alice"));
    INFO("attack: " << a);
    CHECK(foreign_control(frame) == "");
    CHECK(frame.find("pwned") == std::string::npos);
    CHECK(frame.find("c1-title") == std::string::npos);
  }
  // Recorded text in the status line is escaped, not acted on.
  StatusLine s;
  s.user_name = "eve\x1b]0;owned\x07";
  s.target =
      "db\xc2\x9b"
      "2J";
  s.note = "marker: \x1b[31m";
  s.state = "live";
  std::string frame = view.frame({100, 30}, status_text(s));
  CHECK(foreign_control(frame) == "");
  CHECK(frame.find("\\x1b]0;owned\\x07") != std::string::npos);
}

TEST_CASE("huge sizes are clamped") {
  ScreenView view(100000, 100000);
  CHECK(view.cols() == ScreenView::kMaxCols);
  CHECK(view.rows() == ScreenView::kMaxCells / ScreenView::kMaxCols);
  CHECK(view.resize("100000x100000"));
  CHECK(view.cols() == ScreenView::kMaxCols);
  CHECK(view.rows() == ScreenView::kMaxCells / ScreenView::kMaxCols);
  CHECK(view.resize("200x100000"));
  CHECK(view.rows() == ScreenView::kMaxRows);
  CHECK(view.resize("999999999999999999999999x1"));
  CHECK(view.cols() == ScreenView::kMaxCols);
  CHECK(view.rows() == 2);
  CHECK(view.resize("0x0"));
  CHECK(view.cols() == 2);
  CHECK_FALSE(view.resize("-5x10"));
  CHECK_FALSE(view.resize("80x"));
  CHECK_FALSE(view.resize("80 24"));
  CHECK(view.resize("90x30"));
  CHECK(view.cols() == 90);
  CHECK(view.rows() == 30);
  TerminalRecording rec;
  REQUIRE(
      parse_asciicast("{\"version\":2,\"width\":100000,\"height\":-4}\n[0.5,\"o\",\"x\"]\n", rec));
  CHECK(rec.cols == ScreenView::kMaxCols);
  CHECK(rec.rows == 2);
  CHECK(rec.events.size() == 1);
}

TEST_CASE("a screen larger than the analyst's terminal is clipped to it") {
  ScreenView view(120, 40);
  std::string wide(120, 'w');
  view.output(wide.substr(0, 119) + "Z");
  view.output("\x1b[40;1Hbottom-row");
  view.output("\x1b[5;1H\xe4\xb8\xad\xe6\x96\x87");  // two wide characters
  std::string frame = view.frame({30, 10}, status_of("alice"));
  CHECK(foreign_control(frame) == "");
  CHECK(frame.find(std::string(30, 'w')) != std::string::npos);
  CHECK(frame.find(std::string(31, 'w')) == std::string::npos);
  CHECK(frame.find('Z') == std::string::npos);
  CHECK(frame.find("bottom-row") == std::string::npos);  // below the 9 rows shown
  // No cursor position beyond the analyst's terminal.
  std::regex cup(R"(\x1b\[(\d+);(\d+)H)");
  for (auto it = std::sregex_iterator(frame.begin(), frame.end(), cup);
       it != std::sregex_iterator(); ++it) {
    CHECK(std::stoi((*it)[1]) <= 10);
    CHECK(std::stoi((*it)[2]) <= 30);
  }
  // A wide character that would not fit whole in the last column becomes a space.
  CHECK(view.row_text(4, 3) == "\xe4\xb8\xad ");
  // The status line stops one column short of the edge.
  StatusLine s;
  s.user_name = std::string(200, 'u');
  s.state = "live";
  ScreenView small(10, 3);
  std::string f = small.frame({20, 5}, status_text(s));
  CHECK(f.find(std::string(19, 'u')) == std::string::npos);
}

TEST_CASE("frames are paced") {
  FramePacer pacer(std::chrono::milliseconds(33));
  auto t0 = FramePacer::Clock::now();
  CHECK(pacer.due(t0));
  pacer.drawn(t0);
  CHECK_FALSE(pacer.due(t0 + std::chrono::milliseconds(10)));
  CHECK(pacer.wait_ms(t0 + std::chrono::milliseconds(10)) == 23);
  CHECK(pacer.due(t0 + std::chrono::milliseconds(33)));
}

TEST_CASE("playback: speed, idle limit, step and markers") {
  std::vector<TerminalEvent> events = {
      {0.5, 'o', "a"}, {1.0, 'o', "b"}, {31.0, 'm', "alert: x"}, {32.0, 'o', "c"}};
  Playback p(events, 2.0);
  CHECK(p.take_due().empty());
  p.advance(0.5);
  CHECK(p.take_due() == std::vector<size_t>{0});
  p.advance(0.5);
  CHECK(p.take_due() == std::vector<size_t>{1});
  CHECK(p.until_next() == doctest::Approx(2.0));  // 30 s idle cut to 2
  CHECK(p.step() == std::vector<size_t>{2});
  CHECK(p.to_next_marker(events).empty());  // no marker after this one
  CHECK(p.step() == std::vector<size_t>{3});
  CHECK(p.done());
  Playback q(events, 0);
  CHECK(q.to_next_marker(events) == std::vector<size_t>{0, 1, 2});
  CHECK(q.position() == doctest::Approx(31.0));
}

TEST_CASE("lines: partial lines wait, long lines are skipped and counted") {
  LineAssembler a;
  std::vector<std::string> got;
  auto on = [&](std::string_view l) { got.emplace_back(l); };
  a.feed("one\ntw", on);
  CHECK(got == std::vector<std::string>{"one"});
  a.feed("o\n", on);
  CHECK(got.back() == "two");
  std::string huge(LineAssembler::kMaxLine + 10, 'x');
  a.feed(huge.substr(0, 1000), on);
  a.feed(huge.substr(1000), on);
  CHECK(a.held() <= LineAssembler::kMaxLine);
  a.feed("tail\nthree\n", on);
  CHECK(a.skipped() == 1);
  CHECK(got.back() == "three");
  CHECK(got.size() == 3);
}

TEST_CASE("follow: the first matching terminal session, live, then ended") {
  auto line = [](const std::string& session, int seq, const std::string& user,
                 const std::string& action, const std::string& extra) {
    return "{\"@timestamp\":\"2026-11-30T16:24:00.123456Z\",\"castgate\":{\"seq\":" +
           std::to_string(seq) + ",\"session\":\"" + session + "\"" + extra +
           "},\"destination\":{\"address\":\"db1.int\"},\"event\":{\"action\":\"" + action +
           "\"},\"source\":{\"ip\":\"192.0.2.7\"},\"user\":{\"id\":\"" + user + "\",\"name\":\"" +
           user + "\",\"target\":{\"name\":\"ubuntu\"}}}";
  };
  auto header = [&](const std::string& s, int seq, const std::string& user) {
    return line(s, seq, user, "asciicast.header", ",\"channel\":0,\"pty\":true");
  };
  auto with_asciicast = [](std::string l, const std::string& member) {
    l.pop_back();
    return l + ",\"asciicast\":" + member + "}";
  };
  ScreenView view(80, 24);
  SessionFollower f(FollowFilter{"alice", "", ""}, view);
  f.line(with_asciicast(header("s-bob", 3, "bob"), "{\"header\":{\"width\":40,\"height\":10}}"));
  CHECK_FALSE(f.following());
  f.line(
      with_asciicast(header("s-alice", 3, "alice"), "{\"header\":{\"width\":40,\"height\":10}}"));
  REQUIRE(f.following());
  CHECK(view.cols() == 40);
  f.line(with_asciicast(line("s-bob", 4, "bob", "asciicast.output", ",\"channel\":0"),
                        "{\"event\":[0.1,\"o\",\"bob-output\"]}"));
  f.line(with_asciicast(line("s-alice", 4, "alice", "asciicast.output", ",\"channel\":0"),
                        "{\"event\":[0.1,\"o\",\"alice-output\\u001b]0;t\\u0007\"]}"));
  // Delivered twice: applied once.
  f.line(with_asciicast(line("s-alice", 4, "alice", "asciicast.output", ",\"channel\":0"),
                        "{\"event\":[0.1,\"o\",\"alice-output\\u001b]0;t\\u0007\"]}"));
  CHECK(view.row_text(0, 40) == "alice-output" + std::string(28, ' '));
  CHECK(view.row_text(0, 40).find("bob") == std::string::npos);
  CHECK(f.status().target == "db1.int");
  CHECK(f.status().state == "live");
  f.line(line("s-alice", 5, "alice", "session.end", ",\"end_reason\":\"closed\""));
  CHECK(f.ended());
  CHECK(f.status().state == "ended");
  // The next session of alice is followed.
  f.line(
      with_asciicast(header("s-alice2", 3, "alice"), "{\"header\":{\"width\":50,\"height\":12}}"));
  CHECK(f.status().session == "s-alice2");
  CHECK_FALSE(f.ended());
  CHECK(view.cols() == 50);
  CHECK(f.sessions_followed() == 2);
}

TEST_CASE("a character the analyst's terminal draws wider cannot shift a row or the status line") {
  // libvterm 0.1.4 gives U+1FA90 one column; terminals with newer Unicode tables give it two. A
  // row of them must not push "$ ls" over what the row below shows, nor wrap onto the status line.
  ScreenView view(20, 4);
  std::string planets;
  for (int i = 0; i < 30; ++i) planets += "\xf0\x9f\xaa\x90";
  view.output(planets + "\r\n$ curl x | sh");
  std::string frame = view.frame({20, 4}, status_of("alice"));
  CHECK(frame.find("\x1b[?7l") != std::string::npos);  // no autowrap while drawing
  // After each such character, the cursor is put where the emulator's next cell is.
  CHECK(frame.find("\xf0\x9f\xaa\x90\x1b[1;2H") != std::string::npos);
  CHECK(frame.find("\xf0\x9f\xaa\x90\x1b[1;3H") != std::string::npos);
  // The status line is drawn every frame, even when it did not change.
  std::string again = view.frame({20, 4}, status_of("alice"));
  CHECK(again.find("alice") != std::string::npos);
}

TEST_CASE("invisible format characters (bidi overrides, zero-width) never reach the terminal") {
  ScreenView view(40, 3);
  view.output("safe \xe2\x80\xae\x74\x78\x74\x2e\x65\x78\x65 \xe2\x80\x8b \xe2\x81\xa6x");
  std::string frame = view.frame({40, 3}, status_of("alice"));
  for (const char* hidden : {"\xe2\x80\xae", "\xe2\x80\x8b", "\xe2\x81\xa6"})
    CHECK(frame.find(hidden) == std::string::npos);
  CHECK(frame.find("safe") != std::string::npos);
}

TEST_CASE("a recording cannot crash the player's emulator") {
  // libvterm 0.1: U+302A is combining and two columns wide; "A" and enough of them make a glyph
  // wider than the screen, written through a NULL cell. C1 controls as UTF-8 have width -1.
  std::string mark = "\xe3\x80\xaa";
  ScreenView small(2, 2);
  small.output("A" + mark);
  ScreenView view(80, 24);
  std::string glyph = "A";
  for (int i = 0; i < 40; ++i) glyph += mark;
  view.output(glyph);
  // C1 controls as UTF-8 are controls: three NEL (U+0085) and CUB (U+009B "D"), not glyphs of
  // width -1 that move the cursor left of the screen.
  view.output(
      "\r\xc2\x85\xc2\x85\xc2\x85X\xc2\x9b"
      "5DY");
  CHECK(view.row_text(3, 80).substr(0, 2) == "Y ");
}

}  // namespace castgate::player
