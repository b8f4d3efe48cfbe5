// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "flow/result.hpp"

namespace ctaudit::daemon {

// The account `--user NAME` switches ctauditd to, looked up once at start.
struct ServiceAccount {
  std::string name;
  uid_t uid{0};
  gid_t gid{0};  // the primary group; the supplementary ones come from initgroups(3)
};

// Looks `name` up in the user database (getpwnam_r: /etc/passwd, or NSS). Errors (Errc::Usage),
// each saying what to do instead: an empty name, an unknown user, a user with uid 0 (switching to
// root drops nothing).
[[nodiscard]] Result<ServiceAccount> lookupServiceAccount(std::string_view name);

// The start-time rule for `--user NAME`: only a process started as root can switch users.
// `euid` is the caller's effective uid (geteuid()), a parameter so that the rule is testable.
// Errors (Errc::Usage): not root, with what an unprivileged daemon needs instead (no --user, only
// CAP_NET_ADMIN). --check-config reports the same situation as a warning, not through this.
[[nodiscard]] Result<void> requireRootToSwitch(std::string_view name, uid_t euid);

// Gives each of `paths` that exists to the account (chown uid:gid; the mode stays), so that the
// daemon can go on writing what it opened or created as root: the database and its -wal/-shm, the
// JSON-lines file, the stats file. Missing paths are skipped. Errors: chown failed (Errc::Io).
[[nodiscard]] Result<void> handOverFiles(const ServiceAccount& account,
                                         std::span<const std::filesystem::path> paths);

// Switches the whole process to the account and keeps CAP_NET_ADMIN alone, effective and
// permitted (nothing inheritable or ambient, and nothing else in the bounding set): the event
// socket is already open, but every later table dump (a resync) opens a new ctnetlink socket and
// nfnetlink checks CAP_NET_ADMIN of the task that sends a request (netlink_net_capable). Order:
// PR_SET_KEEPCAPS, bounding set, initgroups, setresgid, setresuid, capset; then it checks that
// root cannot be regained. Precondition: the calling thread is the only one, since capabilities
// belong to a thread (capset(2)). Errors: Errc::Io naming the step that failed.
[[nodiscard]] Result<void> dropPrivileges(const ServiceAccount& account);

// After dropPrivileges: each directory lets the daemon create files in it (SQLite's -wal/-shm
// after a restart of the connection, rotated JSON-lines files, the stats file's temporary).
// Errors (Errc::Io): the first directory that is not writable, with the chown that fixes it.
[[nodiscard]] Result<void> requireWritableDirectories(const ServiceAccount& account,
                                                      std::span<const std::filesystem::path> directories);

// For --check-config run as root: whether the account can create files in `directory` (write
// and search permission, ACLs included), asked by a child process that becomes the account and
// calls access(2); the caller keeps its ids. Unknown when that could not be asked (no fork, the
// account's groups unreadable, the child could not become it).
enum class AccountAccess : std::uint8_t { Yes, No, ReadOnlyFileSystem, Unknown };
[[nodiscard]] AccountAccess canCreateFilesAs(const ServiceAccount& account, const std::filesystem::path& directory);

}  // namespace ctaudit::daemon
