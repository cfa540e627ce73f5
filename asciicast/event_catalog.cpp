#include "asciicast/event_catalog.h"

#include <unordered_map>

namespace castgate::asciicast {

const std::vector<EventClass>& event_catalog() {
  // Categories and types from ECS 9.4.0 (schemas/event.yml): each type is one the category
  // expects. Session counts come from session.start/session.end alone; a channel (a shell or a
  // command on the target) is a process; refusals of network access are network/denied.
  static const std::vector<EventClass> catalog = {
      {"gateway.start", "event", {"process"}, {"start"}},
      {"gateway.draining", "event", {"process"}, {"change"}},
      {"gateway.stop", "event", {"process"}, {"end"}},
      {"worker.start", "event", {"process"}, {"start"}},
      {"worker.stop", "event", {"process"}, {"end"}},
      {"worker.lost", "event", {"process"}, {"end"}},
      {"worker.retiring", "event", {"process"}, {"change"}},
      {"config.reload", "event", {"configuration"}, {"change"}},
      {"signer.start", "event", {"process"}, {"start"}},
      {"signer.stop", "event", {"process"}, {"end"}},
      {"signer.certificate", "event", {"iam"}, {"creation"}},
      {"signer.refused", "event", {"iam"}, {"info"}},
      {"checkpoint", "event", {"process"}, {"info"}},
      {"connection.accepted", "event", {"network"}, {"connection", "start"}},
      {"connection.handshake", "event", {"network"}, {"protocol"}},
      {"connection.refused", "event", {"network"}, {"connection", "denied"}},
      {"connection.closed", "event", {"network"}, {"connection", "end"}},
      {"auth.success", "event", {"authentication"}, {"start"}},
      {"auth.failure", "event", {"authentication"}, {"start"}},
      {"auth.partial", "event", {"authentication"}, {"info"}},
      {"auth.device_code", "event", {"authentication"}, {"info"}},
      {"identity.groups", "event", {"iam"}, {"group", "info"}},
      {"policy.denied", "event", {"network"}, {"connection", "denied"}},
      {"session.start", "event", {"session"}, {"start"}},
      {"session.end", "event", {"session"}, {"end"}},
      {"session.warning", "event", {"session"}, {"info"}},
      {"session.lost", "event", {"session"}, {"end"}},
      {"credential.issued", "event", {"iam"}, {"creation"}},
      {"upstream.connected", "event", {"network"}, {"connection", "start"}},
      {"upstream.failed", "event", {"network"}, {"connection", "end"}},
      {"channel.open_failed", "event", {"network"}, {"denied"}},
      {"channel.request_denied", "event", {"network"}, {"denied"}},
      {"channel.end", "event", {"process"}, {"end"}},
      {"asciicast.header", "event", {"process"}, {"start"}},
      {"asciicast.output", "event", {"session"}, {"info"}},
      {"asciicast.stderr", "event", {"session"}, {"info"}},
      {"asciicast.input", "event", {"session"}, {"info"}},
      {"asciicast.resize", "event", {"session"}, {"info"}},
      {"asciicast.marker", "event", {"session"}, {"info"}},
      {"command", "event", {"process"}, {"start"}},
      {"alert", "alert", {"intrusion_detection"}, {"info"}},
      {"port_forward.open", "event", {"network"}, {"connection", "start", "allowed"}},
      {"port_forward.close", "event", {"network"}, {"connection", "end"}},
      {"port_forward.denied", "event", {"network"}, {"denied"}},
      {"jump.open", "event", {"network"}, {"connection", "start"}},
      {"jump.close", "event", {"network"}, {"connection", "end"}},
      {"jump.denied", "event", {"network"}, {"denied"}},
      // SFTP and SCP operations; file.transfer is creation (upload) or access (download).
      {"file.open", "event", {"file"}, {"access"}},
      {"file.close", "event", {"file"}, {"info"}},
      {"file.remove", "event", {"file"}, {"deletion"}},
      {"file.rename", "event", {"file"}, {"change"}},
      {"file.mkdir", "event", {"file"}, {"creation"}},
      {"file.rmdir", "event", {"file"}, {"deletion"}},
      {"file.setstat", "event", {"file"}, {"change"}},
      {"file.symlink", "event", {"file"}, {"creation"}},
      {"file.hardlink", "event", {"file"}, {"creation"}},
      {"file.list", "event", {"file"}, {"access"}},
      {"file.transfer", "event", {"file"}, {"access"}},
      {"file.error", "event", {"file"}, {"info"}},
      {"recording.fallback", "event", {"session"}, {"info"}},
      // Binary output of an exec channel, summarised (stream_summary.h): what a process sent.
      {"stream.progress", "event", {"process"}, {"info"}},
      {"stream.end", "event", {"process"}, {"info"}},
      {"recording.parse_error", "event", {"session"}, {"info"}},
      {"limit.exceeded", "event", {"intrusion_detection"}, {"denied"}},
  };
  return catalog;
}

const EventClass* event_class(std::string_view action) {
  static const auto by_action = [] {
    std::unordered_map<std::string_view, const EventClass*> m;
    for (const auto& e : event_catalog()) m.emplace(e.action, &e);
    return m;
  }();
  auto at = by_action.find(action);
  return at == by_action.end() ? nullptr : at->second;
}

}  // namespace castgate::asciicast
