#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what building and testing ctaudit needs (Debian 12, as root), then builds and runs every
# test: the unit tests and the network-namespace tests against the real kernel (preset `ci`,
# warnings are errors), then the unit tests again under AddressSanitizer + UBSan (preset `asan`)
# and under ThreadSanitizer (preset `tsan`), and a short run of the decoder's fuzz target; also the
# man pages and the Debian package (tests/integration/package/deb_install.sh installs it on this
# machine and purges it again).
# The namespace tests need root; under CI=true a missing tool or privilege fails them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib-deps.sh
source "$root/scripts/lib-deps.sh"

ctaudit_install_packages "${CTAUDIT_BUILD_PACKAGES[@]}" "${CTAUDIT_TEST_PACKAGES[@]}" \
  "${CTAUDIT_PACKAGE_PACKAGES[@]}" "${CTAUDIT_PACKAGE_TEST_PACKAGES[@]}"
ctaudit_load_modules
jobs=$(nproc)

cd "$root"
cmake --preset ci
cmake --build build/ci -j"$jobs"
ctest --preset ci -j"$jobs" -L unit
ctest --preset ci -L systemd
ctest --preset ci -L netns
# The man pages (rendered, every option documented), then the Debian package: built in
# build/package, installed with apt, its daemon run as the unit would in a namespace, purged.
ctest --preset ci -L docs
ctest --preset ci -L package

cmake --preset asan
cmake --build build/asan -j"$jobs" --target ctaudit_unit_tests
ctest --preset asan -j"$jobs"

# The daemon runs a reader thread beside the pipeline thread.
cmake --preset tsan
cmake --build build/tsan -j"$jobs" --target ctaudit_unit_tests
ctest --preset tsan -j"$jobs"

# The decoder's fuzz target (clang's libFuzzer, ASan and UBSan: tests/fuzz/CMakeLists.txt): every
# seed once, then a short run from a fixed seed, so that the harness keeps up with what the
# decoder promises (it once went stale, and every seed failed its checks unnoticed). New inputs go
# to a scratch directory, the first one given; the seeds are only read.
CXX=clang++ cmake -S . -B build/fuzz -DCTAUDIT_BUILD_FUZZERS=ON
cmake --build build/fuzz -j"$jobs" --target conntrack_decoder_fuzz
fuzz_scratch=$(mktemp -d)
trap 'rm -rf "$fuzz_scratch"' EXIT
# A crashing input is kept under build/fuzz/artifacts/ (libFuzzer writes it to the working
# directory otherwise), for tests/data/fuzz/decoder/ once the bug is fixed.
mkdir -p build/fuzz/artifacts
build/fuzz/tests/fuzz/conntrack_decoder_fuzz -seed=1 -runs=300000 -print_final_stats=1 \
  -artifact_prefix=build/fuzz/artifacts/ "$fuzz_scratch" tests/data/fuzz/decoder tests/data/ctnetlink
