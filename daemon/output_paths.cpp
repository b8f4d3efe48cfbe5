// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/output_paths.hpp"

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "storage/schema.hpp"

namespace ctaudit::daemon {
namespace {

namespace fs = std::filesystem;

struct Output {
  std::string_view setting;  // as the option is spelt: "--db"
  fs::path path;
};

// The path made absolute and normalised without the file system ("./flows.db" and "flows.db" in
// the working directory are one file, whether it exists yet or not, and whoever may read it).
fs::path lexical(const fs::path& path) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  return (ec ? path : absolute).lexically_normal();
}

// One file under two names: the same path once normalised, or once symlinks in it are followed,
// or the same inode (a hard link).
bool sameFile(const fs::path& a, const fs::path& b) {
  const fs::path lexical_a = lexical(a);
  const fs::path lexical_b = lexical(b);
  if (lexical_a == lexical_b) {
    return true;
  }
  std::error_code ec;
  const fs::path canonical_a = fs::weakly_canonical(lexical_a, ec);
  const fs::path canonical_b = ec ? fs::path{} : fs::weakly_canonical(lexical_b, ec);
  if (!ec && canonical_a == canonical_b) {
    return true;
  }
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

// The first bytes of the regular file at `path`, or nothing (missing, not regular, empty).
std::string firstBytes(const fs::path& path, std::size_t count) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return {};
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(count, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(count));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

// How much of an existing JSON-lines file is looked at before the daemon appends to it.
constexpr std::size_t kJsonLinesLook = 4096;

// Whether `head`, the start of a file, may be JSON lines: nothing but zeros (a power cut can leave
// them where lines were); or text whose first line is a JSON object; or, after zeros, the middle of
// a line and then a line that is one (the zeros ended inside a line, on a file system of small
// blocks). Another program's text, or a binary file with zeros at its start, is not.
bool looksLikeJsonLines(std::string_view head) {
  const std::size_t data = head.find_first_not_of('\0');
  if (data == std::string_view::npos) {
    return true;
  }
  if (data == 0) {
    return head.front() == '{';
  }
  const std::size_t line_end = head.find('\n', data);
  return line_end == std::string_view::npos || line_end + 1 == head.size() || head[line_end + 1] == '{';
}

// What the existing non-regular file at `status` is, for a message: "a directory".
std::string_view fileKind(const fs::file_status& status) {
  switch (status.type()) {
    case fs::file_type::directory:
      return "a directory";
    case fs::file_type::fifo:
      return "a FIFO";
    case fs::file_type::character:
      return "a character device";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::socket:
      return "a socket";
    default:
      return "not a regular file";
  }
}

// Why the database cannot be at `path`: something other than a regular file is there (SQLite
// opened a FIFO or a device and said only "disk I/O error"), or nullopt.
std::optional<std::string> databasePathUnusable(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status) || fs::is_regular_file(status)) {
    return std::nullopt;
  }
  std::string message = "--db " + path.string() + " is " + std::string(fileKind(status)) +
                        ", not a database file; give --db the path of a file";
  if (fs::is_directory(status)) {
    message += ", e.g. " + (path / "flows.db").string();
  }
  return message;
}

}  // namespace

std::vector<std::string> outputPathProblems(const DaemonConfig& config) {
  std::vector<std::string> problems;
  if (auto unusable = databasePathUnusable(config.db_path)) {
    problems.push_back(std::move(*unusable));
  }
  std::vector<Output> outputs;
  const std::string db = config.db_path.string();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    outputs.push_back({"--db", db + suffix});
  }
  const bool jsonl_file = config.jsonl_path && *config.jsonl_path != "-";
  if (jsonl_file) {
    outputs.push_back({"--jsonl", *config.jsonl_path});
  }
  if (config.stats_file) {
    outputs.push_back({"--stats-file", *config.stats_file});
    outputs.push_back({"--stats-file", config.stats_file->string() + ".tmp"});
  }
  // One pair of settings is said once, on the first of its names that meet.
  std::vector<std::pair<std::string_view, std::string_view>> said;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    for (std::size_t j = i + 1; j < outputs.size(); ++j) {
      const std::pair pair{outputs[i].setting, outputs[j].setting};
      if (pair.first != pair.second && std::ranges::find(said, pair) == said.end() &&
          sameFile(outputs[i].path, outputs[j].path)) {
        said.push_back(pair);
        problems.push_back(std::string(pair.first) + " and " + std::string(pair.second) + " name the same file (" +
                           outputs[j].path.string() +
                           "): each would destroy what the other writes; give each its own path");
      }
    }
  }
  // A file damaged at its start by a power cut (zeros where lines were, and after them perhaps the
  // middle of a line) must not keep the daemon from starting, and the sink only moves a last
  // unfinished line aside. A database is refused (JsonLinesSink::open checks the file it opened
  // again), and so is a file that does not look like JSON lines (looksLikeJsonLines): another
  // program's file (an exploratory run's notes lost their last line to the torn-line check, and a
  // syslog file was renamed and compressed by the rotation at start).
  // A FIFO or a device is a place JSON lines can go (a SIEM shipper's pipe, /dev/null); a directory
  // is not.
  if (std::error_code ec; jsonl_file && fs::is_directory(*config.jsonl_path, ec)) {
    problems.push_back("--jsonl " + config.jsonl_path->string() +
                       " is a directory; give --jsonl the path of a file, e.g. " +
                       (*config.jsonl_path / "flows.jsonl").string());
  } else if (jsonl_file && storage::beginsWithSqliteHeader(*config.jsonl_path)) {
    problems.push_back("--jsonl " + config.jsonl_path->string() +
                       " is a SQLite database, not a JSON-lines file: appending would damage it; give --jsonl a path "
                       "of its own");
  } else if (jsonl_file && !looksLikeJsonLines(firstBytes(*config.jsonl_path, kJsonLinesLook))) {
    problems.push_back("--jsonl " + config.jsonl_path->string() +
                       " is not a JSON-lines file (its first line is not a JSON object): ctauditd would append to "
                       "it, and rotate, compress and in the end delete it; give --jsonl a path of its own");
  }
  if (config.stats_file) {
    // The stats file is replaced whole (a rename over the path): a device or FIFO there would
    // become a regular file, /dev/null included.
    std::error_code ec;
    const auto status = fs::status(*config.stats_file, ec);
    // The stats file is Prometheus text, which begins with a '# HELP' comment.
    if (fs::exists(status) && !fs::is_regular_file(status)) {
      problems.push_back("--stats-file " + config.stats_file->string() +
                         " exists and is not a regular file; it would be replaced by one every few seconds; give "
                         "--stats-file a file of its own, or none");
    } else if (const std::string head = firstBytes(*config.stats_file, 2); !head.empty() && head != "# ") {
      problems.push_back("--stats-file " + config.stats_file->string() +
                         " is not a ctauditd stats file and would be replaced every few seconds; give --stats-file a "
                         "path of its own");
    }
  }
  return problems;
}

fs::path directoryOf(const fs::path& file) { return file.has_parent_path() ? file.parent_path() : fs::path{"."}; }

std::vector<OutputDirectory> outputDirectories(const DaemonConfig& config) {
  std::vector<OutputDirectory> directories{{"db", config.db_path, directoryOf(config.db_path)}};
  if (config.jsonl_path && *config.jsonl_path != "-") {
    directories.push_back({"jsonl", *config.jsonl_path, directoryOf(*config.jsonl_path)});
  }
  if (config.stats_file) {
    directories.push_back({"stats-file", *config.stats_file, directoryOf(*config.stats_file)});
  }
  return directories;
}

std::optional<std::string> outputPathConflict(const DaemonConfig& config) {
  std::vector<std::string> problems = outputPathProblems(config);
  if (problems.empty()) {
    return std::nullopt;
  }
  return std::move(problems.front());
}

}  // namespace ctaudit::daemon
