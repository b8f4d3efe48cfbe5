// SPDX-License-Identifier: GPL-2.0-or-later
// Placeholder until the daemon lands in this session; replaced before the first push.
int main() { return 1; }
