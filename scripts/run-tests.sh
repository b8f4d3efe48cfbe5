#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what building and testing ctaudit needs (Debian 12, as root), then builds and runs every
# test: the unit tests and the network-namespace tests against the real kernel (preset `ci`,
# warnings are errors), then the unit tests again under AddressSanitizer + UBSan (preset `asan`)
# and under ThreadSanitizer (preset `tsan`).
# The namespace tests need root; under CI=true a missing tool or privilege fails them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib-deps.sh
source "$root/scripts/lib-deps.sh"

ctaudit_install_packages "${CTAUDIT_BUILD_PACKAGES[@]}" "${CTAUDIT_TEST_PACKAGES[@]}"
ctaudit_load_modules
jobs=$(nproc)

cd "$root"
cmake --preset ci
cmake --build build/ci -j"$jobs"
ctest --preset ci -j"$jobs" -L unit
ctest --preset ci -L systemd
ctest --preset ci -L netns

cmake --preset asan
cmake --build build/asan -j"$jobs" --target ctaudit_unit_tests
ctest --preset asan -j"$jobs"

# The daemon runs a reader thread beside the pipeline thread.
cmake --preset tsan
cmake --build build/tsan -j"$jobs" --target ctaudit_unit_tests
ctest --preset tsan -j"$jobs"
