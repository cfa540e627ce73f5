#include "asciicast/end_reason.h"

namespace castgate::asciicast {

std::string_view to_string(EndReason reason) {
  switch (reason) {
    case EndReason::kClosed:
      return "closed";
    case EndReason::kUserDisconnected:
      return "user_disconnected";
    case EndReason::kProtocolError:
      return "protocol_error";
    case EndReason::kHandshakeFailed:
      return "handshake_failed";
    case EndReason::kPreauthTimeout:
      return "preauth_timeout";
    case EndReason::kTooManyAuthFailures:
      return "too_many_auth_failures";
    case EndReason::kSignInFailed:
      return "sign_in_failed";
    case EndReason::kSignInExpired:
      return "sign_in_expired";
    case EndReason::kGatewayFull:
      return "gateway_full";
    case EndReason::kGatewayDraining:
      return "gateway_draining";
    case EndReason::kGatewayShutdown:
      return "gateway_shutdown";
    case EndReason::kConfigReloaded:
      return "config_reloaded";
    case EndReason::kRefused:
      return "refused";
    case EndReason::kLocked:
      return "locked";
    case EndReason::kIdleTimeout:
      return "idle_timeout";
    case EndReason::kMaxSessionLength:
      return "max_session_length";
    case EndReason::kOutsideHours:
      return "outside_hours";
    case EndReason::kLimitExceeded:
      return "limit_exceeded";
    case EndReason::kRecordingUnavailable:
      return "recording_unavailable";
    case EndReason::kTargetDisconnected:
      return "target_disconnected";
    case EndReason::kUpstreamFailed:
      return "upstream_failed";
    case EndReason::kInternalError:
      return "internal_error";
    case EndReason::kUserClosed:
      return "user_closed";
    case EndReason::kTargetClosed:
      return "target_closed";
    case EndReason::kCloseUnconfirmed:
      return "close_unconfirmed";
    case EndReason::kAcceptFailed:
      return "accept_failed";
  }
  return {};
}

}  // namespace castgate::asciicast
