#include "gateway/signer.h"

#include <linux/close_range.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "asciicast/chain.h"
#include "asciicast/checkpoint.h"
#include "asciicast/locked_stdout.h"
#include "asciicast/untrusted_text.h"
#include "common/log.h"
#include "common/text.h"
#include "gateway/presented_certificate.h"
#include "gateway/ssh_wire.h"

namespace castgate::signer {

using asciicast::EventKind;
using nlohmann::json;

namespace {

constexpr size_t kMaxKeyId = 1024;
constexpr size_t kMaxPrincipal = 256;

bool plain_principal(std::string_view p) {
  if (p.empty() || p.size() > kMaxPrincipal) return false;
  for (unsigned char c : p)
    if (c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\'' || c == '\\') return false;
  return true;
}

std::chrono::system_clock::time_point from_unix(uint64_t s) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(static_cast<int64_t>(s)));
}

bool well_formed_checkpoint(const json& c, const std::string& prefix) {
  if (!c.is_object()) return false;
  auto number = c.find("number"), interval = c.find("interval");
  if (number == c.end() || !number->is_number_unsigned() || number->get<uint64_t>() < 1 ||
      interval == c.end() || !interval->is_number_integer() || interval->get<int64_t>() < 1 ||
      interval->get<int64_t>() > 3600)
    return false;
  for (const char* name : {"started", "ended", "open"}) {
    auto list = c.find(name);
    if (list == c.end() || !list->is_array()) return false;
    for (const auto& id : *list) {
      if (!id.is_string() || id.get_ref<const std::string&>().empty()) return false;
      // A worker's checkpoint names only its own sessions' chains.
      if (!prefix.empty() && (id.get_ref<const std::string&>().rfind(prefix, 0) != 0 ||
                              id.get_ref<const std::string&>().rfind("worker-", 0) == 0))
        return false;
    }
  }
  return true;
}

}  // namespace

bool signable_event(std::string_view line, size_t max_line, bool from_parent,
                    const std::string& worker_chain) {
  if (line.size() > max_line || line.size() < 2 || line.front() != '{' || line.back() != '}' ||
      asciicast::valid_utf8(line) != line)
    return false;
  json j = json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("castgate") || !j["castgate"].is_object()) return false;
  const json& c = j["castgate"];
  auto session = c.find("session");
  if (session == c.end() || !session->is_string() || c.contains("sig")) return false;
  const std::string& id = session->get_ref<const std::string&>();
  // A checkpoint (checkpoint.h) is signed without ending its chain, and only in a process's own
  // chain: the parent's ("gateway-") from the parent, a worker process's ("worker-") from either.
  auto checkpoint = c.find("checkpoint");
  if (checkpoint != c.end()) {
    const json& event = j.contains("event") ? j["event"] : json();
    if (c.contains("final") || c.contains("lost") || !event.is_object() ||
        event.value("action", "") != "checkpoint")
      return false;
    if (from_parent)
      return (id.rfind("worker-", 0) == 0 || id.rfind("gateway-", 0) == 0) &&
             well_formed_checkpoint(*checkpoint, "");
    std::string prefix = asciicast::worker_chain_prefix(worker_chain);
    return !prefix.empty() && id == worker_chain && well_formed_checkpoint(*checkpoint, prefix);
  }
  auto final = c.find("final");
  if (final == c.end() || *final != true) return false;
  // The closing event of a chain a dead worker left open is the parent's word alone: a worker
  // must not make a record it cut short read as "lost by the gateway".
  if (c.contains("lost") && !from_parent) return false;
  // The signer's own chain is signed by the signer alone.
  return id.rfind("signer-", 0) != 0;
}

Ed25519PrivateKey load_ed25519_key(const std::string& path) {
  std::string text = read_file(path);
  if (text.find("OPENSSH PRIVATE KEY") != std::string::npos) {
    auto seed = ssh::parse_openssh_ed25519_private_key(text);
    secure_zero(text);
    if (!seed) throw std::runtime_error(path + ": " + seed.error().detail);
    auto key = Ed25519PrivateKey::from_seed(*seed);
    secure_zero(*seed);
    if (!key) throw std::runtime_error(path + ": invalid Ed25519 key");
    return std::move(*key);
  }
  auto key = Ed25519PrivateKey::from_pem(text);
  secure_zero(text);
  if (!key) throw std::runtime_error(path + ": not an Ed25519 private key (OpenSSH or PKCS#8 PEM)");
  return std::move(*key);
}

Signer::Signer(std::unique_ptr<UserCertificateSigner> ca, Ed25519PrivateKey recording_key,
               Limits limits, asciicast::SessionLog* audit, const Clock& clock)
    : ca_(std::move(ca)),
      recording_key_(std::move(recording_key)),
      recording_public_(recording_key_.public_key_raw()),
      limits_(limits),
      audit_(audit),
      clock_(clock) {}

std::string Signer::refuse(uint32_t id, const std::string& what, const std::string& reason) {
  ++refusals_;
  if (audit_)
    audit_->emit(EventKind{"signer.refused", "failure", reason},
                 json{{"castgate", {{"signed", {{"request", what}, {"refusals", refusals_}}}}}});
  return encode(Message{Type::kRefused, id, encode_string(reason)});
}

std::optional<std::string> Signer::order_problem(const CertificateOrder& o) const {
  if (!ca_) return "no user CA is configured";
  ssh::WireReader key(o.public_key_blob);
  std::string_view type, pk;
  if (!key.string(type) || type != "ssh-ed25519" || !key.string(pk) || pk.size() != 32 ||
      !key.empty())
    return "the session key is not an Ed25519 public key";
  if (!plain_principal(o.principal)) return "the principal is not one plain login name";
  if (o.key_id.empty() || o.key_id.size() > kMaxKeyId ||
      printable(o.key_id, kMaxKeyId + 1, false) != o.key_id)
    return "the key id is empty, too long, or has control characters or invalid UTF-8";
  if (o.extensions & ~kKnownExtensions) return "an extension outside the fixed set was asked for";
  const auto now_u = static_cast<uint64_t>(unix_seconds(clock_.now()));
  if (o.valid_before <= o.valid_after) return "the validity ends before it starts";
  if (o.valid_after > now_u + 60 ||
      o.valid_after + static_cast<uint64_t>(limits_.max_backdate.count()) < now_u)
    return "the validity does not start now";
  if (o.valid_before > now_u + static_cast<uint64_t>(limits_.max_validity.count()))
    return "the validity is longer than --max-certificate-validity";
  // The address castgate connects from: one host, no prefix.
  auto source = parse_address_list(o.source_address);
  if (o.source_address.find_first_of(",/") != std::string::npos || !source.ok() ||
      source.blocks.size() != 1)
    return "the source-address is not exactly one address";
  return std::nullopt;
}

std::string Signer::certificate(const Message& request) {
  auto order = decode_order(request.body);
  if (!order) return refuse(request.id, "certificate", order.error().detail);
  if (auto problem = order_problem(*order)) return refuse(request.id, "certificate", *problem);
  UserCertificateRequest req;
  req.public_key_blob = order->public_key_blob;
  std::string serial_bytes = random_bytes(8);
  for (unsigned char c : serial_bytes) req.serial = (req.serial << 8) | c;
  req.key_id = order->key_id;
  req.principals = {order->principal};
  req.valid_after = from_unix(order->valid_after);
  req.valid_before = from_unix(order->valid_before);
  req.extensions = extension_names(order->extensions);
  req.critical_options.emplace_back("source-address", order->source_address);
  auto blob = ca_->sign(req);
  if (!blob) return refuse(request.id, "certificate", "the certificate could not be made");
  ++certificates_;
  if (audit_)
    audit_->emit(EventKind{"signer.certificate", "success", ""},
                 json{{"castgate",
                       {{"certificate",
                         {{"serial", std::to_string(req.serial)},
                          {"key_id", req.key_id},
                          {"principals", req.principals},
                          {"extensions", req.extensions},
                          {"source_address", order->source_address},
                          {"key", ssh::fingerprint_sha256(order->public_key_blob)},
                          {"valid_after", rfc3339_micros(req.valid_after)},
                          {"valid_before", rfc3339_micros(req.valid_before)}}},
                        {"signed", {{"certificates", certificates_}}}}}});
  // Its audit line is written before the certificate leaves (the front end cannot hold it back),
  // or the certificate does not leave.
  if (audit_written_ && !audit_written_()) {
    --certificates_;
    return encode(
        Message{Type::kRefused, request.id, encode_string("the signer's audit output failed")});
  }
  return encode(Message{Type::kCertificate, request.id, encode_certificate(req.serial, *blob)});
}

std::string Signer::handle(std::string_view packet) {
  return handle_request(packet, true, "");
}

std::string Signer::handle_request(std::string_view packet, bool from_parent,
                                   const std::string& chain) {
  try {
    auto m = decode(packet);
    if (!m) return refuse(0, "frame", m.error().detail);
    switch (m->type) {
      case Type::kHello:
        if (!m->body.empty()) return refuse(m->id, "hello", "malformed hello");
        return encode(Message{Type::kHelloAnswer, m->id,
                              encode_strings(ca_ ? ca_->ca_public_blob() : "", recording_public_)});
      case Type::kSignCertificate:
        return certificate(*m);
      case Type::kSignLine: {
        auto line = decode_string(m->body);
        if (!line || !signable_event(*line, limits_.max_line, from_parent, chain))
          return refuse(m->id, "line", "not the last event of a session nor a checkpoint");
        ++lines_;
        return encode(
            Message{Type::kSignature, m->id,
                    encode_string(recording_key_.sign(asciicast::signature_payload(*line)))});
      }
      case Type::kAttach:
        return refuse(m->id, "attach", "no connection came with the attach");
      default:
        return refuse(m->id, "frame", "not a request");
    }
  } catch (const std::exception& e) {
    return refuse(0, "frame", std::string("internal error: ") + e.what());
  }
}

namespace {

bool seqpacket_unix_socket(int fd) {
  int type = 0, domain = 0;
  socklen_t type_size = sizeof(type), domain_size = sizeof(domain);
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_size) == 0 &&
         getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &domain_size) == 0 &&
         type == SOCK_SEQPACKET && domain == AF_UNIX;
}

}  // namespace

std::string Signer::attach(const Message& request, Arrival& arrival, UniqueFd& attached) {
  // A worker that could attach would open channels the parent does not know of.
  if (!arrival.control)
    return refuse(request.id, "attach", "only the control connection attaches connections");
  // The body names the worker's own chain (checkpoints): "worker-" and letters and digits.
  const std::string& chain = request.body;
  if (chain.size() > 64 || (!chain.empty() && asciicast::worker_chain_prefix(chain).empty()) ||
      !std::all_of(chain.begin(), chain.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-';
      }))
    return refuse(request.id, "attach", "malformed attach");
  if (arrival.fds.size() != 1 || arrival.truncated)
    return refuse(request.id, "attach", "an attach carries exactly one connection");
  if (arrival.open_connections >= kMaxConnections)
    return refuse(request.id, "attach", "too many connections are attached");
  if (!seqpacket_unix_socket(arrival.fds[0].get()))
    return refuse(request.id, "attach", "the connection is not an AF_UNIX SOCK_SEQPACKET socket");
  attached = std::move(arrival.fds[0]);
  arrival.fds.clear();
  arrival.chain = chain;  // handed back to the caller with the connection
  ++connections_;
  return encode(Message{Type::kAttached, request.id, ""});
}

std::string Signer::handle_arrival(std::string_view packet, Arrival arrival, UniqueFd& attached,
                                   std::string* attached_chain) {
  attached.reset();
  std::string answer;
  try {
    auto m = decode(packet);
    if (m && m->type == Type::kAttach) {
      answer = attach(*m, arrival, attached);
      if (attached && attached_chain) *attached_chain = arrival.chain;
    } else if (!arrival.fds.empty() || arrival.truncated)
      answer = refuse(m ? m->id : 0, "frame", "descriptors came with a request that takes none");
    else
      answer = handle_request(packet, arrival.control, arrival.chain);
  } catch (const std::exception& e) {
    attached.reset();
    answer = refuse(0, "frame", std::string("internal error: ") + e.what());
  }
  // Closed here, not when the caller's statement ends: nothing passed outlives its answer.
  arrival.fds.clear();
  return answer;
}

namespace {

// Only the socket (as fd 3) and the standard streams stay open.
int keep_only(int fd) {
  if (fd != 3) {
    dup2(fd, 3);
    close(fd);
  }
  if (close_range(4, ~0U, 0) != 0)
    for (int other = 4; other < 65536; ++other) close(other);
  return 3;
}

// Room for every connection it may hold (a soft limit of 1024 is common), as far as the hard
// limit allows; past that, an attach finds no descriptor free and is refused.
void make_room_for_connections() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  const rlim_t want = kMaxConnections + 16;
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
    r.rlim_cur = r.rlim_max == RLIM_INFINITY ? want : std::min(want, r.rlim_max);
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

[[noreturn]] void serve(int fd, const ProcessOptions& options) {
  std::string packet(kMaxMessage + 1, '\0');
  auto view = [&](const Received& in) {
    return std::string_view(packet.data(), static_cast<size_t>(in.size));
  };
  // The first request is the hello; its answer says whether the keys could be read. Anything
  // passed with it is closed with `hello_in`.
  Received hello_in = receive_packet(fd, packet, 0);
  if (hello_in.size <= 0) _exit(0);
  auto hello = decode(view(hello_in));
  uint32_t hello_id = hello ? hello->id : 0;
  std::unique_ptr<UserCertificateSigner> ca;
  std::optional<Ed25519PrivateKey> recording;
  try {
    if (!hello || hello->type != Type::kHello) throw std::runtime_error("the signer expects hello");
    if (!options.user_ca_key_file.empty())
      ca = std::make_unique<UserCertificateSigner>(load_ed25519_key(options.user_ca_key_file));
    if (!options.recording_key_file.empty())
      recording = load_ed25519_key(options.recording_key_file);
    else if (options.generate_recording_key)
      recording = Ed25519PrivateKey::generate();
    else
      throw std::runtime_error("--recording-key is required: every session's record is signed");
  } catch (const std::exception& e) {
    send_packet(fd, encode(Message{Type::kRefused, hello_id, encode_string(e.what())}), -1, 0);
    _exit(0);
  }
  const Clock& clock = SystemClock::instance();
  asciicast::LockedStdout out(options.output_lock);
  Signer signer(std::move(ca), std::move(*recording), options.limits, nullptr, clock);
  recording.reset();
  send_packet(fd, signer.handle(view(hello_in)), -1, 0);
  hello_in.fds.clear();
  make_room_for_connections();
  // The audit chain starts with the first request after the hello (castgate may still fail to
  // start before that: then nothing is written), and its last event is signed by the recording
  // key, like every session's.
  asciicast::LocalRecordSigner self_signer(signer.recording_key());
  std::unique_ptr<asciicast::SessionLog> audit;
  auto start_audit = [&] {
    if (!options.audit || audit) return;
    asciicast::SessionLogOptions lopts;
    lopts.instance = options.instance;
    lopts.max_line = options.limits.max_line;
    lopts.signing_key = &self_signer;
    audit = std::make_unique<asciicast::SessionLog>(
        lopts, options.audit_chain.empty() ? "signer-" + random_id(8) : options.audit_chain,
        asciicast::Endpoint{"", 0}, out, std::make_shared<asciicast::Backlog>(SIZE_MAX), clock);
    signer.set_audit(audit.get(), [&out] { return out.ok(); });
    audit->emit(
        EventKind{"signer.start", "success", ""},
        json{{"castgate",
              {{"recording_key", asciicast::recording_key_id(signer.recording_public_key())}}}});
  };
  struct Attached {
    UniqueFd fd;
    std::string chain;  // the worker's own chain, as the parent named it
  };
  std::vector<Attached> workers;  // the attached connections
  // Serves one message from `conn`; false when the connection is done for.
  auto serve_one = [&](int conn, bool control, const std::string& chain) {
    Received in = receive_packet(conn, packet, MSG_DONTWAIT);
    if (in.size < 0 && (in.error == EAGAIN || in.error == EWOULDBLOCK)) return true;
    if (in.size <= 0) return false;  // closed (or died)
    start_audit();
    Arrival arrival{control, std::move(in.fds), in.truncated, workers.size(), chain};
    UniqueFd attached;
    std::string attached_chain;
    std::string answer =
        signer.handle_arrival(view(in), std::move(arrival), attached, &attached_chain);
    if (attached) workers.push_back({std::move(attached), std::move(attached_chain)});
    // castgate's parent reads its answers, and is waited on as before. A worker's answer that
    // cannot be queued at once means it sends without reading: it loses its connection rather
    // than hold up the others.
    return send_packet(conn, answer, -1, control ? 0 : MSG_DONTWAIT) ==
           static_cast<ssize_t>(answer.size());
  };
  std::vector<pollfd> ready;
  for (;;) {
    ready.assign(1, pollfd{fd, POLLIN, 0});
    for (const auto& w : workers) ready.push_back(pollfd{w.fd.get(), POLLIN, 0});
    if (poll(ready.data(), ready.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // One message per ready connection per round: a worker that floods the signer cannot starve
    // the others. Connections attached in this round are polled from the next.
    if (ready[0].revents && !serve_one(fd, true, "")) break;  // the chain ends with the control one
    for (size_t i = 1; i < ready.size(); ++i)
      if (ready[i].revents && !serve_one(ready[i].fd, false, workers[i - 1].chain))
        workers[i - 1].fd.reset();
    std::erase_if(workers, [](const Attached& w) { return !w.fd; });
  }
  if (audit)
    audit->end(EventKind{"signer.stop", "", "castgate closed the signer"},
               json{{"castgate",
                     {{"signed",
                       {{"certificates", signer.certificates()},
                        {"lines", signer.lines()},
                        {"refusals", signer.refusals()},
                        {"connections", signer.connections()}}}}}});
  _exit(0);
}

}  // namespace

void run_process(int fd, const ProcessOptions& options) {
  prctl(PR_SET_NAME, "castgate-signer");
  prctl(PR_SET_DUMPABLE, 0);  // no core dumps, no ptrace or /proc/PID/mem by the same user
  // Whatever happens, this process never returns into castgate's code.
  try {
    serve(keep_only(fd), options);
  } catch (...) {
  }
  _exit(1);
}

}  // namespace castgate::signer
