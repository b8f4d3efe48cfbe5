// SPDX-License-Identifier: GPL-2.0-or-later
// jsonl_follower: follows a JSON-lines file through its rotations the way Filebeat's filestream,
// Vector's file source and Fluent Bit's tail do, and counts what it read, so that the netns tests
// can check that a shipper sees every line exactly once (tests/integration/netns/jsonl_rotation.sh).
//
//   jsonl_follower DIR REGEX [--poll MS]
//
// Every poll it lists DIR; each regular file whose name matches REGEX (ECMAScript, whole name) is
// tracked by its identity (device, inode), not by its name: a file that is renamed (rotated) keeps
// its descriptor and its offset, so it is read on to its end and never read twice. A new identity
// is read from its start. A tracked file that has been unlinked (compressed, pruned) is read to its
// end through the descriptor it holds and then dropped. Holding each descriptor until then also
// keeps the kernel from reusing the inode number for a new file meanwhile.
//
// SIGTERM or SIGINT: one more scan, every file read to its end, then a one-line JSON summary on
// standard output and exit 0:
//   {"lines":N,"duplicates":D,"bad":B,"files":F,"unfinished_bytes":U}
// lines: complete lines read; duplicates: lines identical to one read before (every record line
// carries its own conntrack id and event time, so a repeat means a line was read twice); bad: lines
// that are not one JSON object ({...}); files: identities followed; unfinished_bytes: bytes after
// the last newline of each file (a torn line). Exit 2 for a usage error, 1 for an I/O error.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flow/unique_c.hpp"

namespace {

using ctaudit::UniqueFd;

struct Counts {
  std::uint64_t lines{0};
  std::uint64_t duplicates{0};
  std::uint64_t bad{0};
  std::uint64_t files{0};
  std::unordered_set<std::uint64_t> seen;  // hashes of the lines read

  void line(std::string_view text) {
    ++lines;
    if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
      ++bad;
    }
    if (!seen.insert(std::hash<std::string_view>{}(text)).second) {
      ++duplicates;
    }
  }
};

struct Followed {
  UniqueFd fd;
  std::string partial;  // the read end of a line whose newline has not come yet
};

using Identity = std::pair<dev_t, ino_t>;

class Follower {
public:
  Follower(std::filesystem::path dir, std::regex pattern) : dir_(std::move(dir)), pattern_(std::move(pattern)) {}

  // Opens every matching file not followed yet. False on an error listing the directory.
  bool scan() {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!std::regex_match(name, pattern_)) {
        continue;
      }
      UniqueFd fd{::open(it->path().c_str(), O_RDONLY | O_CLOEXEC)};
      struct stat st {};
      if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        continue;  // renamed or removed since the listing: the next scan sees it under its new name
      }
      const Identity id{st.st_dev, st.st_ino};
      if (files_.count(id) == 0) {
        files_.emplace(id, Followed{std::move(fd), {}});
        ++counts_.files;
      }
    }
    if (ec) {
      std::cerr << "jsonl_follower: cannot list " << dir_.string() << ": " << ec.message() << '\n';
      return false;
    }
    return true;
  }

  // Reads every followed file to its current end; drops those unlinked and read out.
  bool readAll() {
    std::vector<char> buffer(1 << 20);
    for (auto it = files_.begin(); it != files_.end();) {
      Followed& file = it->second;
      for (;;) {
        const ssize_t n = ::read(file.fd.get(), buffer.data(), buffer.size());
        if (n < 0) {
          if (errno == EINTR) {
            continue;
          }
          std::cerr << "jsonl_follower: read failed: " << std::strerror(errno) << '\n';
          return false;
        }
        if (n == 0) {
          break;
        }
        consume(file, std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      }
      struct stat st {};
      if (::fstat(file.fd.get(), &st) == 0 && st.st_nlink == 0) {
        unfinished_ += file.partial.size();
        it = files_.erase(it);  // at its end and gone from the directory: nothing more can come
      } else {
        ++it;
      }
    }
    return true;
  }

  void report() const {
    std::uint64_t unfinished = unfinished_;
    for (const auto& [id, file] : files_) {
      unfinished += file.partial.size();
    }
    std::cout << R"({"lines":)" << counts_.lines << R"(,"duplicates":)" << counts_.duplicates << R"(,"bad":)"
              << counts_.bad << R"(,"files":)" << counts_.files << R"(,"unfinished_bytes":)" << unfinished << "}\n";
  }

private:
  void consume(Followed& file, std::string_view data) {
    for (std::size_t newline = data.find('\n'); newline != std::string_view::npos; newline = data.find('\n')) {
      if (file.partial.empty()) {
        counts_.line(data.substr(0, newline));
      } else {
        file.partial.append(data.substr(0, newline));
        counts_.line(file.partial);
        file.partial.clear();
      }
      data.remove_prefix(newline + 1);
    }
    file.partial.append(data);
  }

  std::filesystem::path dir_;
  std::regex pattern_;
  std::map<Identity, Followed> files_;
  Counts counts_;
  std::uint64_t unfinished_{0};
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.size() != 2 && !(args.size() == 4 && args[2] == "--poll")) {
    std::cerr << "usage: jsonl_follower DIR REGEX [--poll MS]\n";
    return 2;
  }
  long poll_ms = 20;
  if (args.size() == 4) {
    poll_ms = std::strtol(std::string(args[3]).c_str(), nullptr, 10);
    if (poll_ms <= 0 || poll_ms > 10000) {
      std::cerr << "jsonl_follower: --poll wants 1 to 10000 milliseconds\n";
      return 2;
    }
  }
  std::regex pattern;
  try {
    pattern = std::regex(std::string(args[1]));
  } catch (const std::regex_error& error) {
    std::cerr << "jsonl_follower: bad REGEX '" << args[1] << "': " << error.what() << '\n';
    return 2;
  }
  // The stop signals are waited for, not handled: no handler, no global flag.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  Follower follower{std::filesystem::path(args[0]), std::move(pattern)};
  const timespec wait{poll_ms / 1000, (poll_ms % 1000) * 1'000'000};
  for (;;) {
    if (!follower.scan() || !follower.readAll()) {
      return 1;
    }
    if (sigtimedwait(&stop_signals, nullptr, &wait) > 0) {
      break;
    }
  }
  // A last look: what was written before the stop was asked for.
  if (!follower.scan() || !follower.readAll()) {
    return 1;
  }
  follower.report();
  return 0;
}
