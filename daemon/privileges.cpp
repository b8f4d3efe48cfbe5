// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/privileges.hpp"

#include <cerrno>
#include <cstring>
#include <type_traits>
#include <vector>

#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flow/unique_c.hpp"

namespace ctaudit::daemon {
namespace {

using CapState = UniqueC<std::remove_pointer_t<cap_t>, cap_free>;

Unexpected stepFailed(const std::string& step, int err) {
  return fail(Errc::Io, "cannot drop privileges: " + step + " failed: " + std::strerror(err), err);
}

// The only capability the daemon keeps, as libcap wants it (an array).
constexpr std::array<cap_value_t, 1> kKept{CAP_NET_ADMIN};

}  // namespace

Result<void> requireRootToSwitch(std::string_view name, uid_t euid) {
  if (euid != 0) {
    return fail(Errc::Usage, "--user " + std::string(name) + " needs ctauditd to be started as root (it runs as uid " +
                                 std::to_string(euid) +
                                 "); started as an unprivileged user it needs no --user, only CAP_NET_ADMIN "
                                 "(systemd AmbientCapabilities=CAP_NET_ADMIN, or setpriv --ambient-caps +net_admin)");
  }
  return {};
}

Result<ServiceAccount> lookupServiceAccount(std::string_view name) {
  const std::string user(name);
  if (user.empty()) {
    return fail(Errc::Usage, "--user needs a user name, e.g. --user ctaudit");
  }
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  int rc = 0;
  while ((rc = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE &&
         buffer.size() < (std::size_t{1} << 20U)) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0) {
    // The user database could not be read (NSS not up yet at boot, EIO): it may pass, so an I/O
    // error, which exits 1 and is restarted, not a refused configuration.
    return fail(Errc::Io, "cannot look up the user '" + user + "': " + std::strerror(rc), rc);
  }
  if (found == nullptr) {
    return fail(Errc::Usage, "--user " + user +
                                 ": no such user; create it first (the package's sysusers.d file creates 'ctaudit': "
                                 "systemd-sysusers) or name an existing one");
  }
  if (entry.pw_uid == 0) {
    return fail(Errc::Usage, "--user " + user +
                                 " is uid 0: switching to it would drop no privilege; name an unprivileged user");
  }
  return ServiceAccount{user, entry.pw_uid, entry.pw_gid};
}

Result<void> handOverFiles(const ServiceAccount& account, std::span<const std::filesystem::path> paths) {
  for (const auto& path : paths) {
    // lchown: a symlink planted where the daemon writes must not hand someone else's file over.
    if (::lchown(path.c_str(), account.uid, account.gid) != 0 && errno != ENOENT) {
      const int err = errno;
      return fail(Errc::Io,
                  "cannot give " + path.string() + " to user " + account.name + ": " + std::strerror(err), err);
    }
  }
  return {};
}

Result<void> dropPrivileges(const ServiceAccount& account) {
  // Keep the permitted set across the uid change; without it setresuid clears every capability.
  if (::prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) {
    return stepFailed("prctl(PR_SET_KEEPCAPS)", errno);
  }
  // Nothing may be regained through exec either: empty the bounding set but for CAP_NET_ADMIN
  // (needs CAP_SETPCAP, so before the uid change), and the ambient set.
  for (cap_value_t cap = 0; cap < cap_max_bits(); ++cap) {
    if (cap != CAP_NET_ADMIN && cap_drop_bound(cap) != 0) {
      return stepFailed("dropping capability " + std::to_string(cap) + " from the bounding set", errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L) != 0 && errno != EINVAL) {
    return stepFailed("clearing the ambient capabilities", errno);
  }
  // Groups before the uid: setgroups and setresgid need CAP_SETGID, gone after setresuid.
  if (::initgroups(account.name.c_str(), account.gid) != 0) {
    return stepFailed("initgroups(" + account.name + ")", errno);
  }
  if (::setresgid(account.gid, account.gid, account.gid) != 0) {
    return stepFailed("setresgid(" + std::to_string(account.gid) + ")", errno);
  }
  if (::setresuid(account.uid, account.uid, account.uid) != 0) {
    return stepFailed("setresuid(" + std::to_string(account.uid) + ")", errno);
  }
  const CapState wanted{cap_init()};
  if (!wanted || cap_set_flag(wanted.get(), CAP_PERMITTED, kKept.size(), kKept.data(), CAP_SET) != 0 ||
      cap_set_flag(wanted.get(), CAP_EFFECTIVE, kKept.size(), kKept.data(), CAP_SET) != 0) {
    return stepFailed("building the capability set", errno);
  }
  if (cap_set_proc(wanted.get()) != 0) {
    return stepFailed("capset(CAP_NET_ADMIN)", errno);
  }
  if (::prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) {
    return stepFailed("prctl(PR_SET_KEEPCAPS, 0)", errno);
  }
  // The proof: the sets are exactly as wanted and root is out of reach.
  const CapState now{cap_get_proc()};
  if (!now || cap_compare(now.get(), wanted.get()) != 0) {
    return fail(Errc::Io, "cannot drop privileges: the capability sets are not CAP_NET_ADMIN alone after capset");
  }
  if (::setresuid(0, 0, 0) == 0 || ::getuid() != account.uid || ::geteuid() != account.uid) {
    return fail(Errc::Io, "cannot drop privileges: uid 0 can still be regained");
  }
  return {};
}

AccountAccess canCreateFilesAs(const ServiceAccount& account, const std::filesystem::path& directory) {
  // The groups in the parent: initgroups reads the group database (NSS, malloc), which a child
  // forked from a process with other threads must not; the child only makes system calls.
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(account.name.c_str(), account.gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist(account.name.c_str(), account.gid, groups.data(), &count) < 0) {
      return AccountAccess::Unknown;
    }
  }
  groups.resize(static_cast<std::size_t>(count));
  constexpr int kCanCreate = 0;
  constexpr int kCannot = 1;
  constexpr int kNotBecome = 2;
  constexpr int kReadOnly = 3;
  const pid_t child = ::fork();
  if (child < 0) {
    return AccountAccess::Unknown;
  }
  if (child == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(account.gid, account.gid, account.gid) != 0 ||
        ::setresuid(account.uid, account.uid, account.uid) != 0) {
      ::_exit(kNotBecome);
    }
    if (::access(directory.c_str(), W_OK | X_OK) == 0) {
      ::_exit(kCanCreate);
    }
    ::_exit(errno == EROFS ? kReadOnly : kCannot);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      return AccountAccess::Unknown;
    }
  }
  if (!WIFEXITED(status)) {
    return AccountAccess::Unknown;
  }
  switch (WEXITSTATUS(status)) {
    case kCanCreate:
      return AccountAccess::Yes;
    case kCannot:
      return AccountAccess::No;
    case kReadOnly:
      return AccountAccess::ReadOnlyFileSystem;
    default:
      return AccountAccess::Unknown;
  }
}

Result<void> requireWritableDirectories(const ServiceAccount& account,
                                        std::span<const std::filesystem::path> directories) {
  for (const auto& directory : directories) {
    // After the switch real and effective ids are the account's, so access(2) answers for it.
    // CAP_NET_ADMIN does not bypass file permissions.
    if (::access(directory.c_str(), W_OK | X_OK) != 0) {
      const int err = errno;
      return fail(Errc::Io,
                  "user " + account.name + " cannot create files in " + directory.string() + " (" +
                      std::strerror(err) + "), where ctauditd creates files as it runs (SQLite's -wal/-shm, " +
                      "rotated JSON lines, the stats file); give it the directory: chown " + account.name + ": " +
                      directory.string() + " (or use the systemd unit's StateDirectory=/LogsDirectory=)",
                  err);
    }
  }
  return {};
}

}  // namespace ctaudit::daemon
