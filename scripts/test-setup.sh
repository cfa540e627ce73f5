#!/usr/bin/env bash
# Prepares this machine for castgate's end-to-end tests (run as root by `make test`):
# an unprivileged account the tests log in to (dropbear target, sudo prompts) and the privilege
# separation directory sshd needs. The account has no usable password until a test sets a random
# one for itself, and may only run /usr/bin/true through sudo.
set -euo pipefail
USER_NAME=castgate-test
if [ "$(id -u)" -ne 0 ]; then
  echo "test-setup: not root; the tests that need the $USER_NAME account will fail" >&2
  exit 0
fi
mkdir -p /run/sshd
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$USER_NAME"
fi
# Debian's skeleton clears the screen at logout, which would hide what the tests read.
rm -f "/home/$USER_NAME/.bash_logout"
# "*": no password can match, yet sshd does not treat the account as locked ("!" would be).
usermod -p '*' "$USER_NAME"
install -d -m 0755 /etc/sudoers.d
echo "$USER_NAME ALL=(root) /usr/bin/true" > /etc/sudoers.d/castgate-test
chmod 0440 /etc/sudoers.d/castgate-test
