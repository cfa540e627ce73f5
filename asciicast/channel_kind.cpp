#include "asciicast/channel_kind.h"

namespace castgate::asciicast {

std::string_view to_string(ChannelType type) {
  switch (type) {
    case ChannelType::kSession:
      return "session";
    case ChannelType::kDirectTcpip:
      return "direct-tcpip";
  }
  return {};
}

std::string_view to_string(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::kShell:
      return "shell";
    case ChannelKind::kExec:
      return "exec";
    case ChannelKind::kSubsystem:
      return "subsystem";
  }
  return {};
}

}  // namespace castgate::asciicast
