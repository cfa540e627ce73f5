// Follows rsync's remote-shell protocol (`rsync --server`): both protocol versions, the server's
// compatibility flags, both sides' negotiation strings, the checksum seed, then multiplexed
// frames. The file list and file data are counted, not parsed. See transfer_follower.h.
#pragma once

#include <memory>

#include "asciicast/transfer_follower.h"

namespace castgate::asciicast {

std::unique_ptr<TransferFollower> make_rsync_follower(RsyncCommand command);

}  // namespace castgate::asciicast
