#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the Debian package ctaudit_<version>-<release>_<arch>.deb from this tree (Debian 12, as
# root for the package installation; the build itself needs no root) and prints its path on the
# last line of stdout. Release build in build/package with prefix /usr, Debian's hardening flags
# (dpkg-buildflags), no tests. Install it with `apt-get install ./build/package/ctaudit_*.deb`.
# CTAUDIT_DEB_RELEASE=N sets the Debian revision (default 1); extra arguments go to the CMake
# configure step (e.g. -DCPACK_DEBIAN_PACKAGE_MAINTAINER="Name <mail>").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib-deps.sh
source "$root/scripts/lib-deps.sh"

ctaudit_install_packages "${CTAUDIT_BUILD_PACKAGES[@]}" "${CTAUDIT_PACKAGE_PACKAGES[@]}"
build=${CTAUDIT_PACKAGE_BUILD_DIR:-$root/build/package}

# What dh_auto_configure passes: the distribution's optimisation, hardening and relro flags.
# CMake reads CXXFLAGS and LDFLAGS from the environment at the first configure only; CPPFLAGS
# (-D_FORTIFY_SOURCE=2) has no CMake variable, so it goes with the compiler flags.
CXXFLAGS="$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
export CXXFLAGS LDFLAGS

cmake -S "$root" -B "$build" -G "Unix Makefiles" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DCTAUDIT_BUILD_TESTS=OFF \
  -DCTAUDIT_DEB_RELEASE="${CTAUDIT_DEB_RELEASE:-1}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
rm -f "$build"/ctaudit_*.deb
(cd "$build" && cpack -G DEB >&2)
shopt -s nullglob
debs=("$build"/ctaudit_*.deb)
if ((${#debs[@]} != 1)); then
  echo "build-deb: expected one ctaudit_*.deb in $build, found ${#debs[@]}" >&2
  exit 1
fi
echo "${debs[0]}"
