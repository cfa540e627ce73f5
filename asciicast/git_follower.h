// Follows git's pack protocols over SSH: git-upload-pack (fetch, clone, ls-remote; protocol v0,
// v1 and v2), git-receive-pack (push) and git-upload-archive (archive --remote). See
// transfer_follower.h for what a follower checks and reports.
#pragma once

#include <memory>

#include "asciicast/transfer_follower.h"

namespace castgate::asciicast {

std::unique_ptr<TransferFollower> make_git_follower(GitCommand command);

}  // namespace castgate::asciicast
