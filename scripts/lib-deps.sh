# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the run-*.sh scripts: installs the Debian 12 packages that building, running and
# testing ctaudit need. apt-get runs only when a package is missing, so repeated runs are quick.

CTAUDIT_BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libnetfilter-conntrack-dev libmnl-dev libsqlite3-dev nlohmann-json3-dev libspdlog-dev
  libssl-dev libtomlplusplus-dev
)
CTAUDIT_TEST_PACKAGES=(
  libgtest-dev conntrack nftables iproute2 socat jq iputils-ping sqlite3 kmod procps
  # bench/json_mapping_bench (Google Benchmark, {fmt} for the comparison) and bench/cpu_profile.sh
  libbenchmark-dev libfmt-dev linux-perf valgrind
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
