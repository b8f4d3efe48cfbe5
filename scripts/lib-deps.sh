# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the run-*.sh scripts: installs the Debian 12 packages that building, running and
# testing ctaudit need. apt-get runs only when a package is missing, so repeated runs are quick.

CTAUDIT_BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libnetfilter-conntrack-dev libmnl-dev libsqlite3-dev nlohmann-json3-dev libspdlog-dev
  libssl-dev libtomlplusplus-dev libabsl-dev
  libsystemd-dev libcap-dev libzstd-dev zlib1g-dev
)
CTAUDIT_TEST_PACKAGES=(
  libgtest-dev conntrack nftables iproute2 socat jq iputils-ping sqlite3 kmod procps
  systemd util-linux zstd gzip logrotate
  # bench/json_mapping_bench (Google Benchmark, {fmt} for the comparison), built with the tests
  libbenchmark-dev libfmt-dev
  # the decoder's fuzz target: clang and its libFuzzer
  clang libclang-rt-14-dev
)
# bench/run-benchmarks.sh (issue #4): the peers it measures ctauditd against, the SQLite shell
# that counts their rows, and gnuplot (no X) for the plot.
CTAUDIT_BENCH_PACKAGES=(
  ulogd2 ulogd2-sqlite3 ulogd2-json conntrack sqlite3 gnuplot-nox
  # bench/cpu_profile.sh
  linux-perf valgrind
  # bench/query-ladder.sh: fincore (how much of a store is in the page cache)
  util-linux-extra
)

# Building the Debian package (scripts/build-deb.sh): dpkg-shlibdeps and dpkg-buildflags come
# with dpkg-dev, and CPack's DEB generator runs file(1) to find the binaries.
CTAUDIT_PACKAGE_PACKAGES=(
  dpkg-dev file
)
# The package test (tests/integration/package/) and the man page check: groff renders the pages,
# lintian checks the .deb, setpriv (util-linux) runs the installed daemon as the unit would.
CTAUDIT_PACKAGE_TEST_PACKAGES=(
  groff-base lintian util-linux
)

ctaudit_install_packages() {
  local missing=()
  local package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "ctaudit: missing packages: ${missing[*]}; run this as root (or install them with apt-get)" >&2
    return 1
  fi
  echo "ctaudit: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The kernel modules the daemon and the namespace tests use; built in on some kernels, so a
# failed modprobe is not an error by itself.
ctaudit_load_modules() {
  local module
  for module in nf_conntrack nf_conntrack_netlink nf_nat nf_tables nft_chain_nat nft_ct nft_nat \
                nft_masq veth; do
    modprobe -q "$module" 2>/dev/null || true
  done
}
