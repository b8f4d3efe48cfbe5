# SPDX-License-Identifier: GPL-2.0-or-later
# ctaudit::options carries what every target compiles with; ctaudit::warnings the warning set.
# Warnings become errors in the `ci` preset (CMAKE_COMPILE_WARNING_AS_ERROR), not here, so that a
# newer compiler's new warning does not break a user's build.
add_library(ctaudit_options INTERFACE)
add_library(ctaudit::options ALIAS ctaudit_options)
target_compile_features(ctaudit_options INTERFACE cxx_std_20)
target_include_directories(ctaudit_options INTERFACE
  ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)

add_library(ctaudit_warnings INTERFACE)
add_library(ctaudit::warnings ALIAS ctaudit_warnings)
target_compile_options(ctaudit_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
  -Wnon-virtual-dtor -Woverloaded-virtual -Wnull-dereference -Wformat=2
  -Wimplicit-fallthrough -Werror=vla)
