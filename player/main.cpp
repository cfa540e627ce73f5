// castgate-player: find, verify and replay castgate sessions from raw logs.
#include <simdjson.h>
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "player/catalog.h"
#include "player/commands.h"
#include "player/export.h"
#include "player/follow.h"
#include "player/input_chunks.h"
#include "player/log_reader.h"
#include "player/play.h"
#include "player/terminal_text.h"
#include "player/verify.h"
#ifdef CASTGATE_WEB_PLAYER
#include "player/replay_page.h"
#endif

namespace po = boost::program_options;
using namespace castgate::player;

namespace {

const char* kUsage = R"(usage: castgate-player COMMAND [options] FILE...
Reads castgate's event stream as stored: raw JSON lines, Docker/CRI container logs, or
Fluent Bit output; plain, gzip or zstd (Fluent Bit's S3 objects are gzip). FILE may be a
directory (every file below it) or "-" for standard input. Lines that cannot be castgate events
are counted and reported on stderr; with --strict they make the command fail (exit 1).

commands:
  list      sessions with who, from where, to which target, when and how they ended
  commands  every command: when, who, from where, on which target as which login, its exit
            status and alerts (the auditor's "who ran what on X on March 3rd")
  verify    check that sessions are complete and untouched (hash chain and signature)
  channels  the recorded channels of a session
  export    one channel of a session as an asciicast v2 file (asciinema play/cat)
  html      a self-contained web page replaying a session, with its timeline and verdict
  play      replay a session's terminal here, like asciinema play (space: pause/resume,
            .: step while paused, ]: next marker, +/-: speed, q: quit)
  follow    live view: follow a growing stream (kubectl logs -f ... | castgate-player follow
            --user alice, or a file it tails) and show the first matching session's terminal
            as it happens, with who, from where, to which target in a status line

play and follow draw the recorded terminal from a terminal emulator: only its printable
characters reach your terminal, never the recorded escape sequences.

With --key, export, html and play show only what the recording key vouches for. Recorded text
printed to the terminal has its control characters escaped (\x1b, \u009b, \\).

verify says per session OK, FAILED (incomplete or altered), LOST: authentic, but the gateway
lost its end (the worker process serving it died; the parent closed the chain with a signed
session.lost event), or OPEN: still running (the newest signed checkpoint of its gateway lists
it open, and the gateway was writing when the store was read). It also names sessions the
checkpoints list that the store lacks (deleted whole) and checkpoints that are missing. It exits
0 when every session is OK, 3 when the only sessions that are not OK are LOST, 4 when some are
OPEN and none failed, and 1 when any session failed or there was none; export and html with
--key exit the same way for their session. Usage errors exit 2.
)";

po::variables_map parse(int argc, char** argv, po::options_description& opts) {
  opts.add_options()("help,h", "show help")("files", po::value<std::vector<std::string>>(),
                                            "log files");
  po::positional_options_description pos;
  pos.add("files", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  return vm;
}

std::vector<std::string> files(const po::variables_map& vm) {
  if (!vm.count("files")) return {"-"};
  return expand_inputs(vm["files"].as<std::vector<std::string>>());
}

// Lines of the inputs that cannot be castgate events, over all files read so far.
size_t g_other_lines = 0;

// Says on stderr what in an input is not castgate's: nothing is skipped silently.
void report_census(const std::string& path, const LineCensus& c) {
  if (c.lines > 0 && c.candidates == 0)
    std::cerr << "castgate-player: " << terminal_safe(path) << ": no castgate events in its "
              << c.lines << " lines\n";
  else if (c.others() > 0)
    std::cerr << "castgate-player: " << terminal_safe(path) << ": " << c.others() << " of "
              << c.lines << " lines are not castgate events or are cut short (the first: line "
              << c.first_other << ")\n";
  g_other_lines += c.others();
}

std::unique_ptr<MappedFile> open_input(const std::string& path) {
  auto file = std::make_unique<MappedFile>(path);
  report_census(path, census(*file));
  return file;
}

// list and commands read every input once, front to back, in pieces of whole lines (see
// InputChunks: compressed inputs are decompressed ahead of the scan, without a temporary file).
void scan_inputs(const po::variables_map& vm, const std::function<void(std::string_view)>& add) {
  auto paths = files(vm);
  InputChunks inputs(paths);
  LineCensus c;
  inputs.read(
      [&](std::string_view text) {
        // A plain file comes as one piece, its mapping: its lines are counted on another core
        // meanwhile (decompressed pieces are small, and the other cores inflate).
        if (text.size() < kParallelScanFrom) {
          c.add(text);
          add(text);
          return;
        }
        auto counted = std::async(std::launch::async, [&] { c.add(text); });
        add(text);
        counted.get();
      },
      [&](size_t i, const std::string& warning) {
        std::cerr << warning;
        report_census(paths[i], c);
        c = {};
      });
}

// Lines that looked like the events a command reads but could not be read: said on stderr, and
// counted for --strict.
void report_unreadable(size_t n) {
  if (n == 0) return;
  std::cerr << "castgate-player: " << n
            << " lines that name castgate events could not be read (cut short, or not JSON)\n";
  g_other_lines += n;
}

// A time bound as given (a date, or seconds without a fraction) made comparable, as text, with
// castgate's timestamps (2026-03-03T09:14:02.118270Z): a date alone means the whole day.
std::string time_bound(std::string t, bool upper) {
  if (t.size() == 10) return upper ? t + "T23:59:59.999999Z" : t + "T00:00:00.000000Z";
  if (t.size() == 20 && t.back() == 'Z') {
    t.pop_back();
    return t + (upper ? ".999999Z" : ".000000Z");
  }
  return t;
}

// --strict: lines that are not castgate events make the command fail.
int strict_result(const po::variables_map& vm, int rc) {
  if (rc == 0 && vm.count("strict") && g_other_lines > 0) {
    std::cerr << "castgate-player: --strict: " << g_other_lines
              << " lines of the input are not castgate events\n";
    return 1;
  }
  return rc;
}

// The input files, mapped once so that they can be read twice ("-", stdin, can only be read once).
using Inputs = std::vector<std::unique_ptr<MappedFile>>;
Inputs open_inputs(const po::variables_map& vm) {
  Inputs inputs;
  for (auto& path : files(vm)) inputs.push_back(open_input(path));
  return inputs;
}

// What export and html read: the session asked for, the input files, and with --key the verdict
// on the session, whose verified chain is then all that may be shown.
struct SessionInput {
  std::string session;
  Inputs files;
  std::optional<SessionVerdict> verdict;
  const VerifiedChain* shown() const { return verdict ? &verdict->verified : nullptr; }
};

// Nothing (said on stderr) if --key was given and the input holds no line of the session.
std::optional<SessionInput> open_session(const po::variables_map& vm, std::string session,
                                         Inputs inputs) {
  SessionInput in{std::move(session), std::move(inputs), std::nullopt};
  if (!vm.count("key")) return in;
  VerifyOptions vo;
  vo.session = in.session;
  vo.allow_reorder = vm.count("allow-reorder") > 0;
  Verifier verifier(load_recording_keys(vm["key"].as<std::string>()), vo);
  for (auto& f : in.files) verifier.add_file(*f);
  for (auto& v : verifier.finish())
    if (v.session == in.session) in.verdict = std::move(v);
  if (in.verdict) return in;
  std::cerr << "castgate-player: no events of session " << terminal_safe(in.session)
            << " in the input\n";
  return std::nullopt;
}

std::string duration_text(int64_t ns) {
  if (ns < 0) return "-";
  int64_t s = ns / 1000000000;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

int cmd_list(int argc, char** argv) {
  po::options_description opts("list options");
  opts.add_options()("user", po::value<std::string>(), "identity id, name or email")(
      "target", po::value<std::string>(), "target name")(
      "since", po::value<std::string>(), "sessions active at or after (RFC 3339, UTC)")(
      "until", po::value<std::string>(), "sessions active at or before (RFC 3339, UTC)")(
      "denied", "include sign-ins refused by policy")("json", "one JSON object per session")(
      "strict", "fail if a line of the input is not a castgate event");
  auto vm = parse(argc, argv, opts);
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  CatalogFilter f;
  if (vm.count("user")) f.user = vm["user"].as<std::string>();
  if (vm.count("target")) f.target = vm["target"].as<std::string>();
  if (vm.count("since")) f.since = time_bound(vm["since"].as<std::string>(), false);
  if (vm.count("until")) f.until = time_bound(vm["until"].as<std::string>(), true);
  f.include_denied = vm.count("denied") > 0;
  Catalog catalog;
  scan_inputs(vm, [&](std::string_view text) { catalog.add_text(text); });
  report_unreadable(catalog.unreadable());
  auto sessions = catalog.sessions(f);
  if (vm.count("json")) {
    for (auto& s : sessions) {
      nlohmann::json j = {{"session", s.session},
                          {"start", s.start},
                          {"end", s.end},
                          {"user_id", s.user_id},
                          {"user_name", s.user_name},
                          {"user_email", s.user_email},
                          {"kind", s.kind},
                          {"auth_method", s.auth_method},
                          {"source_ip", s.source_ip},
                          {"target", s.target},
                          {"login", s.login},
                          {"channels", s.channels},
                          {"end_reason", s.end_reason},
                          {"denied", s.denied}};
      if (s.duration_ns >= 0) j["duration_ns"] = s.duration_ns;
      if (s.denied) j["denial"] = s.denial;
      j["lost"] = s.lost;
      if (s.lost) j["lost_reason"] = s.lost_reason;
      std::cout << j.dump() << '\n';
    }
    return strict_result(vm, 0);
  }
  std::printf("%-27s %-16s %-24s %-15s %-16s %-10s %-9s %s\n", "START", "SESSION", "USER", "SOURCE",
              "TARGET", "LOGIN", "DURATION", "END");
  for (auto& s : sessions) {
    std::string user = s.user_email.empty() ? s.user_name : s.user_email;
    std::string end = s.end_reason;
    if (s.denied)
      end = "denied (" + s.denial + ")";
    else if (s.lost)
      end = "lost (worker " + (s.lost_cause.empty() ? "died" : s.lost_cause) + ")";
    else if (s.end.empty())
      end = "(open or truncated)";
    std::printf("%-27s %-16s %-24s %-15s %-16s %-10s %-9s %s\n", terminal_safe(s.start).c_str(),
                terminal_safe(s.session).c_str(), terminal_safe(user).c_str(),
                terminal_safe(s.source_ip).c_str(), terminal_safe(s.target).c_str(),
                terminal_safe(s.login).c_str(), duration_text(s.duration_ns).c_str(),
                terminal_safe(end).c_str());
  }
  return strict_result(vm, 0);
}

int cmd_commands(int argc, char** argv) {
  po::options_description opts("commands options");
  opts.add_options()("user", po::value<std::string>(), "identity id, name or email")(
      "target", po::value<std::string>(), "target name")(
      "since", po::value<std::string>(), "commands at or after (RFC 3339, UTC; a prefix works)")(
      "until", po::value<std::string>(), "commands at or before (RFC 3339, UTC)")(
      "grep", po::value<std::string>(), "commands containing this text")(
      "key", po::value<std::string>(),
      "recording public key(s): flag the rows of sessions that do not verify")(
      "json", "one JSON object per command")("strict",
                                             "fail if a line of the input is not a castgate event");
  auto vm = parse(argc, argv, opts);
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  CommandFilter f;
  if (vm.count("user")) f.user = vm["user"].as<std::string>();
  if (vm.count("target")) f.target = vm["target"].as<std::string>();
  if (vm.count("since")) f.since = time_bound(vm["since"].as<std::string>(), false);
  if (vm.count("until")) f.until = time_bound(vm["until"].as<std::string>(), true);
  if (vm.count("grep")) f.grep = vm["grep"].as<std::string>();
  CommandIndex index;
  std::optional<Verifier> verifier;
  if (vm.count("key"))
    verifier.emplace(load_recording_keys(vm["key"].as<std::string>()), VerifyOptions{});
  if (verifier) {
    // The verifier needs each file whole.
    for (auto& path : files(vm)) {
      auto file = open_input(path);
      index.add_file(*file);
      verifier->add_file(*file);
    }
  } else {
    scan_inputs(vm, [&](std::string_view text) { index.add_text(text); });
  }
  report_unreadable(index.unreadable());
  std::map<std::string, std::string> verdict;  // session -> "ok", "lost", "open", "FAILED"
  // With --key, every session that does not verify is named, rows or not: a record altered so
  // that its commands or its start are gone (or that names another target) must not just vanish
  // from the table.
  int rc = 0;
  if (verifier) {
    for (auto& v : verifier->finish()) {
      verdict[v.session] = v.ok ? "ok" : v.lost ? "lost" : v.open ? "open" : "FAILED";
      if (v.ok) continue;
      std::cerr << "castgate-player: session " << terminal_safe(v.session)
                << (v.lost   ? " is LOST (authentic, its end lost by the gateway)"
                    : v.open ? " is OPEN (still running: no signature vouches for it yet)"
                             : " FAILED verification: its commands may be missing, altered or "
                               "attributed wrongly")
                << '\n';
      if (v.open)
        rc = rc == 0 || rc == kVerifyExitLost ? kVerifyExitOpen : rc;
      else if (v.lost)
        rc = rc == 0 ? kVerifyExitLost : rc;
      else
        rc = 1;
    }
  }
  auto rows = index.rows(f);
  auto verified = [&](const CommandRow& r) -> std::string {
    if (!verifier) return "";
    auto it = verdict.find(r.session);
    return it == verdict.end() ? "FAILED" : it->second;
  };
  if (vm.count("json")) {
    for (auto& r : rows) {
      nlohmann::json j = {{"time", r.time},
                          {"session", r.session},
                          {"channel", r.channel},
                          {"command", r.command},
                          {"via", r.via},
                          {"user_id", r.who.user_id},
                          {"user_name", r.who.user_name},
                          {"user_email", r.who.user_email},
                          {"kind", r.who.kind},
                          {"source_ip", r.who.source_ip},
                          {"target", r.who.target},
                          {"login", r.who.login},
                          {"alerts", r.alerts}};
      if (r.exit_code) j["exit_code"] = *r.exit_code;
      if (verifier) j["verified"] = verified(r);
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    }
    return strict_result(vm, rc);
  }
  std::printf("%-27s %-24s %-8s %-15s %-16s %-10s %-18s %-4s %s\n", "TIME", "USER", "KIND",
              "SOURCE", "TARGET", "LOGIN", "SESSION", "EXIT", "COMMAND");
  for (auto& r : rows) {
    std::string user = r.who.user_email.empty() ? r.who.user_name : r.who.user_email;
    std::string exit = r.exit_code ? std::to_string(*r.exit_code) : "-";
    std::string marks;
    for (auto& a : r.alerts) marks += " [alert: " + a + "]";
    std::string v = verified(r);
    if (!v.empty() && v != "ok") marks += " [session " + v + " verification]";
    std::printf("%-27s %-24s %-8s %-15s %-16s %-10s %-18s %-4s %s%s\n",
                terminal_safe(r.time).c_str(), terminal_safe(user).c_str(),
                terminal_safe(r.who.kind).c_str(), terminal_safe(r.who.source_ip).c_str(),
                terminal_safe(r.who.target).c_str(), terminal_safe(r.who.login).c_str(),
                terminal_safe(r.session).c_str(), exit.c_str(), terminal_safe(r.command).c_str(),
                terminal_safe(marks).c_str());
  }
  if (!verifier) std::cerr << "castgate-player: not verified (no --key)\n";
  return strict_result(vm, rc);
}

int cmd_verify(int argc, char** argv) {
  po::options_description opts("verify options");
  opts.add_options()("key", po::value<std::string>(),
                     "recording public key(s), as printed by castgate --print-recording-key")(
      "session", po::value<std::string>(), "only this session")(
      "allow-reorder", "accept events out of file order (checked by sequence number)")(
      "strict", "fail on any line that is not a castgate event (for raw castgate logs)")(
      "as-of", po::value<std::string>(),
      "when the store was read (RFC 3339; default now): a session without its end is OPEN only "
      "if its gateway was still writing then")("json", "one JSON verdict per session");
  auto vm = parse(argc, argv, opts);
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (!vm.count("key")) throw std::runtime_error("verify needs --key (the recording public key)");
  VerifyOptions vo;
  if (vm.count("as-of")) {
    vo.now = rfc3339_seconds(time_bound(vm["as-of"].as<std::string>(), true));
    if (vo.now <= 0) throw std::runtime_error("--as-of: not an RFC 3339 time");
  }
  if (vm.count("session")) vo.session = vm["session"].as<std::string>();
  vo.allow_reorder = vm.count("allow-reorder") > 0;
  vo.strict = vm.count("strict") > 0;
  Verifier verifier(load_recording_keys(vm["key"].as<std::string>()), vo);
  for (auto& path : files(vm)) verifier.add_file(MappedFile(path));  // reports foreign lines itself
  auto verdicts = verifier.finish();
  if (verdicts.empty()) std::cerr << "castgate-player: no castgate events found\n";
  return write_verify_report(std::cout, verdicts, verifier.foreign_lines(), vm.count("json") > 0);
}

int cmd_channels(int argc, char** argv) {
  po::options_description opts("channels options");
  opts.add_options()("session", po::value<std::string>()->required(), "session id")(
      "strict", "fail if a line of the input is not a castgate event");
  auto vm = parse(argc, argv, opts);
  SessionExporter ex(vm["session"].as<std::string>());
  for (auto& path : files(vm)) ex.add_file(*open_input(path));
  for (auto& c : ex.channels())
    std::printf("%d\t%s\t%s\t%s%s\t%llu events\n", c.channel, terminal_safe(c.kind).c_str(),
                c.pty ? "pty" : "no-pty", c.file_transfer.empty() ? "" : "file transfer: ",
                terminal_safe(c.file_transfer).c_str(), static_cast<unsigned long long>(c.events));
  return strict_result(vm, 0);
}

int cmd_export(int argc, char** argv) {
  po::options_description opts("export options");
  opts.add_options()("session", po::value<std::string>()->required(), "session id")(
      "channel", po::value<int>(), "channel number (default: the first recorded)")(
      "key", po::value<std::string>(),
      "recording public key(s): export only the events the signed final event vouches for")(
      "allow-reorder", "accept events out of file order (checked by sequence number)")(
      "strict", "fail if a line of the input is not a castgate event")(
      "output,o", po::value<std::string>(), "write here instead of standard output");
  auto vm = parse(argc, argv, opts);
  auto in = open_session(vm, vm["session"].as<std::string>(), open_inputs(vm));
  if (!in) return 1;
  const auto& session = in->session;
  const auto& verdict = in->verdict;
  if (verdict && verdict->verified.empty()) {
    std::cerr << "castgate-player: no event of session " << terminal_safe(session)
              << " verifies, so nothing is exported:\n";
    write_findings(std::cerr, *verdict, "  - ");
    return 1;
  }
  SessionExporter ex(session, /*keep_other_events=*/false, in->shown());
  for (auto& f : in->files) ex.add_file(*f);
  std::optional<int> channel;
  if (vm.count("channel")) channel = vm["channel"].as<int>();
  ExportResult written;
  if (vm.count("output")) {
    std::ofstream out(vm["output"].as<std::string>(), std::ios::binary);
    written = ex.write(out, channel);
  } else {
    std::ios::sync_with_stdio(false);
    written = ex.write(std::cout, channel);
  }
  if (!written) {
    std::cerr << "castgate-player: " << terminal_safe(written.error().detail) << '\n';
    if (verdict) write_findings(std::cerr, *verdict, "  - ");
    return 1;
  }
  if (verdict && verdict->lost) {
    std::cerr << "castgate-player: session " << terminal_safe(session)
              << " is LOST: the record is authentic (" << verdict->verified.size()
              << " events, signature valid) but the gateway lost its end:\n";
    write_findings(std::cerr, *verdict, "  - ");
    return kVerifyExitLost;
  }
  if (verdict && !verdict->ok) {
    std::cerr << "castgate-player: session " << terminal_safe(session)
              << " is NOT VERIFIED; exported only what its signed final event vouches for ("
              << verdict->verified.size() << " of " << verdict->events << " events):\n";
    write_findings(std::cerr, *verdict, "  - ");
    return 1;
  }
  return strict_result(vm, 0);
}

int cmd_html(int argc, char** argv) {
#ifdef CASTGATE_WEB_PLAYER
  po::options_description opts("html options");
  opts.add_options()("session", po::value<std::string>()->required(), "session id")(
      "key", po::value<std::string>(),
      "recording public key(s): the page then shows whether the session verifies")(
      "allow-reorder", "accept events out of file order (checked by sequence number)")(
      "strict", "fail if a line of the input is not a castgate event")(
      "output,o", po::value<std::string>()->required(), "the HTML file to write");
  auto vm = parse(argc, argv, opts);
  auto in = open_session(vm, vm["session"].as<std::string>(), open_inputs(vm));
  if (!in) return 1;
  const auto& session = in->session;
  const auto& verdict = in->verdict;
  SessionExporter ex(session, /*keep_other_events=*/true, in->shown());
  for (auto& f : in->files) ex.add_file(*f);
  std::string path = vm["output"].as<std::string>();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  if (auto written = write_replay_page(out, ex, session, verdict); !written) {
    out.close();
    std::remove(path.c_str());
    std::cerr << "castgate-player: " << terminal_safe(written.error().detail) << '\n';
    return 1;
  }
  out.close();
  if (!out) throw std::runtime_error("writing " + path + " failed");
  if (!verdict) {
    std::cerr << "castgate-player: wrote " << path << " (integrity not checked: no --key)\n";
    return strict_result(vm, 0);
  }
  if (verdict->ok) {
    std::cerr << "castgate-player: wrote " << path << " (verified)\n";
    return strict_result(vm, 0);
  }
  if (verdict->lost) {
    std::cerr << "castgate-player: wrote " << path << " (LOST: authentic, all "
              << verdict->verified.size() << " events verify, but the gateway lost its end):\n";
    write_findings(std::cerr, *verdict, "  - ");
    return kVerifyExitLost;
  }
  std::cerr << "castgate-player: wrote " << path << " (NOT VERIFIED: it shows only the "
            << verdict->verified.size() << " of " << verdict->events
            << " events that the signed final event vouches for):\n";
  write_findings(std::cerr, *verdict, "  - ");
  return 1;
#else
  (void)argc;
  (void)argv;
  throw std::runtime_error(
      "this castgate-player was built without the web player (CASTGATE_WEB_PLAYER=OFF)");
#endif
}

std::string first_string(const std::vector<std::string_view>& events, const char* pointer) {
  thread_local simdjson::dom::parser parser;
  for (auto json : events) {
    simdjson::dom::element root;
    std::string_view v;
    if (parser.parse(json.data(), json.size()).get(root) == simdjson::SUCCESS &&
        root.at_pointer(pointer).get_string().get(v) == simdjson::SUCCESS && !v.empty())
      return std::string(v);
  }
  return {};
}

int cmd_play(int argc, char** argv) {
  po::options_description opts("play options");
  opts.add_options()("session", po::value<std::string>(),
                     "session id (default: the only session with a terminal)")(
      "channel", po::value<int>(), "channel number (default: the first terminal channel)")(
      "speed", po::value<double>()->default_value(1.0), "playback speed (1/64 to 64)")(
      "idle-time-limit", po::value<double>()->default_value(0.0),
      "cut every pause between events to at most this many seconds (0: no limit)")(
      "key", po::value<std::string>(),
      "recording public key(s): play only the events the signed final event vouches for")(
      "allow-reorder", "accept events out of file order (checked by sequence number)")(
      "strict", "fail if a line of the input is not a castgate event");
  auto vm = parse(argc, argv, opts);
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  Inputs inputs = open_inputs(vm);
  std::string session;
  if (vm.count("session")) {
    session = vm["session"].as<std::string>();
  } else {
    std::vector<const MappedFile*> files;
    for (auto& f : inputs) files.push_back(f.get());
    auto found = terminal_sessions(files);
    if (found.size() != 1) {
      std::cerr << "castgate-player: "
                << (found.empty() ? "no session with a terminal in the input"
                                  : "several sessions with a terminal; choose one with --session:")
                << '\n';
      Catalog catalog;
      for (auto* f : files) catalog.add_file(*f);
      std::map<std::string, SessionSummary> known;
      for (auto& s : catalog.sessions(CatalogFilter{"", "", "", "", true})) known[s.session] = s;
      for (auto& id : found) {
        auto& s = known[id];
        std::cerr << "  " << terminal_safe(id) << "  " << terminal_safe(s.start) << "  "
                  << terminal_safe(s.user_email.empty() ? s.user_name : s.user_email) << "  "
                  << terminal_safe(s.target) << '\n';
      }
      return 2;
    }
    session = found.front();
  }
  auto in = open_session(vm, session, std::move(inputs));
  if (!in) return 1;
  const auto& verdict = in->verdict;
  if (verdict && verdict->verified.empty()) {
    std::cerr << "castgate-player: no event of session " << terminal_safe(session)
              << " verifies, so nothing is played:\n";
    write_findings(std::cerr, *verdict, "  - ");
    return 1;
  }
  SessionExporter ex(session, /*keep_other_events=*/true, in->shown());
  for (auto& f : in->files) ex.add_file(*f);
  std::optional<int> channel;
  if (vm.count("channel")) {
    channel = vm["channel"].as<int>();
  } else {
    for (auto& c : ex.channels())
      if (c.pty && !channel) channel = c.channel;
  }
  std::ostringstream cast;
  if (auto written = ex.write(cast, channel); !written) {
    std::cerr << "castgate-player: " << terminal_safe(written.error().detail) << '\n';
    return 1;
  }
  TerminalRecording recording;
  bool readable = false;
  {
    // Moved out of the stream and dropped once parsed: the session is held once more, not thrice.
    std::string text = std::move(cast).str();
    readable = parse_asciicast(text, recording);
  }
  if (!readable) {
    std::cerr << "castgate-player: the recording of session " << terminal_safe(session)
              << " has no readable header\n";
    return 1;
  }
  StatusLine status;
  auto others = ex.other_events();
  status.user_id = first_string(others, "/user/id");
  status.user_name = first_string(others, "/user/name");
  status.source_ip = first_string(others, "/source/ip");
  status.target = first_string(others, "/destination/address");
  status.login = first_string(others, "/destination/user/name");
  if (status.login.empty()) status.login = first_string(others, "/user/target/name");
  status.session = session;
  status.channel = channel ? *channel : ex.channels().front().channel;
  if (verdict && !verdict->ok) status.note = verdict->lost ? "LOST (authentic)" : "NOT VERIFIED";
  PlayOptions po;
  po.speed = vm["speed"].as<double>();
  po.idle_time_limit = vm["idle-time-limit"].as<double>();
  if (!(po.speed > 0)) throw std::runtime_error("--speed must be more than 0");
  int rc = play_recording(recording, status, po);
  if (verdict && verdict->lost) {
    std::cerr << "castgate-player: session " << terminal_safe(session)
              << " is LOST: authentic, but the gateway lost its end:\n";
    write_findings(std::cerr, *verdict, "  - ");
    return rc ? rc : kVerifyExitLost;
  }
  if (verdict && !verdict->ok) {
    std::cerr << "castgate-player: session " << terminal_safe(session)
              << " is NOT VERIFIED; played only what its signed final event vouches for:\n";
    write_findings(std::cerr, *verdict, "  - ");
    return rc ? rc : 1;
  }
  if (!verdict && rc == 0) std::cerr << "castgate-player: not verified (no --key)\n";
  return rc ? rc : strict_result(vm, 0);
}

int cmd_follow(int argc, char** argv) {
  po::options_description opts("follow options");
  opts.add_options()("user", po::value<std::string>(), "identity id, name or email")(
      "target", po::value<std::string>(), "target name")("session", po::value<std::string>(),
                                                         "only this session (exits when it ends)")(
      "once", "exit when the followed session ends");
  po::options_description all;
  all.add(opts);
  auto vm = parse(argc, argv, all);
  if (vm.count("help")) {
    std::cout << "usage: castgate-player follow [options] [FILE|-]\n" << opts;
    return 0;
  }
  FollowOptions o;
  if (vm.count("user")) o.filter.user = vm["user"].as<std::string>();
  if (vm.count("target")) o.filter.target = vm["target"].as<std::string>();
  if (vm.count("session")) o.filter.session = vm["session"].as<std::string>();
  o.once = vm.count("once") > 0;
  if (vm.count("files")) {
    auto paths = vm["files"].as<std::vector<std::string>>();
    if (paths.size() != 1) throw std::runtime_error("follow reads one stream (a file, or -)");
    o.input = paths.front();
  }
  return follow_stream(o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "list") return cmd_list(argc - 1, argv + 1);
    if (cmd == "commands") return cmd_commands(argc - 1, argv + 1);
    if (cmd == "verify") return cmd_verify(argc - 1, argv + 1);
    if (cmd == "channels") return cmd_channels(argc - 1, argv + 1);
    if (cmd == "export") return cmd_export(argc - 1, argv + 1);
    if (cmd == "html") return cmd_html(argc - 1, argv + 1);
    if (cmd == "play") return cmd_play(argc - 1, argv + 1);
    if (cmd == "follow") return cmd_follow(argc - 1, argv + 1);
    std::cerr << "castgate-player: unknown command " << cmd << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "castgate-player: " << terminal_safe(e.what()) << '\n';
    return 2;
  }
}
