#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what ctauditd needs (Debian 12, as root), builds it, and runs it in the foreground with
# its defaults: /var/lib/ctaudit/flows.db and /var/log/ctaudit/flows.jsonl. Extra arguments go to
# ctauditd (see --help). Stop it with Ctrl-C: it writes everything pending first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib-deps.sh
source "$root/scripts/lib-deps.sh"

ctaudit_install_packages "${CTAUDIT_BUILD_PACKAGES[@]}"
ctaudit_load_modules
cmake --preset release -S "$root" >/dev/null
cmake --build "$root/build/release" -j"$(nproc)" --target ctauditd ctaudit
echo "ctaudit: starting ctauditd; query with $root/build/release/query/ctaudit" >&2
exec "$root/build/release/daemon/ctauditd" "$@"
