# SPDX-License-Identifier: GPL-2.0-or-later
# CPACK_PRE_BUILD_SCRIPTS: runs after CPack has installed the package's files into its staging
# directory and before it builds the .deb.
# 1. Every file under /etc becomes a conffile (what dh_installdeb does for debhelper packages), so
#    that dpkg keeps an admin's changes on upgrade and asks before replacing them, and removes them
#    only on purge. The list is made from the tree, so a file another rule adds under /etc is
#    covered without anyone editing a list.
# 2. A file installed under /usr/etc or /usr/local is a wrong install rule (a relative
#    CMAKE_INSTALL_SYSCONFDIR is "etc", i.e. /usr/etc, with prefix /usr: use
#    CMAKE_INSTALL_FULL_SYSCONFDIR), or a build not configured with prefix /usr: stop here with
#    the reason rather than ship it.

set(staging "${CPACK_TEMPORARY_DIRECTORY}")
# A stale list from an earlier run must not let a failed check still produce a package: CPackDeb
# fails when a CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA file is missing.
file(REMOVE "${CPACK_CTAUDIT_CONFFILES}")
if(NOT IS_DIRECTORY "${staging}")
  message(FATAL_ERROR "check_staging: no staging directory at '${staging}'")
endif()

file(GLOB_RECURSE misplaced LIST_DIRECTORIES false RELATIVE "${staging}"
     "${staging}/usr/etc/*" "${staging}/usr/local/*")
if(misplaced)
  list(JOIN misplaced "\n  /" misplaced_text)
  message(FATAL_ERROR
    "check_staging: the package would install files where Debian never reads them:\n  /${misplaced_text}\n"
    "Configure the build with -DCMAKE_INSTALL_PREFIX=/usr (scripts/build-deb.sh does), and install files "
    "for /etc with DESTINATION \${CMAKE_INSTALL_FULL_SYSCONFDIR}/..., not \${CMAKE_INSTALL_SYSCONFDIR}.")
endif()

file(GLOB_RECURSE etc_files LIST_DIRECTORIES false RELATIVE "${staging}" "${staging}/etc/*")
list(SORT etc_files)
set(conffiles "")
foreach(file IN LISTS etc_files)
  string(APPEND conffiles "/${file}\n")
endforeach()
file(WRITE "${CPACK_CTAUDIT_CONFFILES}" "${conffiles}")
message(STATUS "check_staging: conffiles:\n${conffiles}")
