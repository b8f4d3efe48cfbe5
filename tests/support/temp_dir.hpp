// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>

namespace ctaudit::testing {

// A fresh directory under $TMPDIR, removed with everything in it when the object dies.
class TempDir {
public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& name) const { return path_ / name; }

private:
  std::filesystem::path path_;
};

}  // namespace ctaudit::testing
