// SPDX-License-Identifier: GPL-2.0-or-later
// ct_group_sender COUNT: sends COUNT ctnetlink "new conntrack" messages from user space to the
// conntrack NEW event group of the current network namespace, as any process with CAP_NET_ADMIN
// there can. Each claims an attribute longer than the message, so a listener that took it for a
// kernel event could not decode it. For netns/foreign_sender.sh: ctauditd must ignore them.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "flow/unique_c.hpp"

namespace {

struct Message {
  nlmsghdr header;
  nfgenmsg family;
  nlattr attribute;  // says 200 bytes; the message ends after its header
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: ct_group_sender COUNT\n");
    return 2;
  }
  const long count = std::strtol(argv[1], nullptr, 10);
  const ctaudit::UniqueFd socket{::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)};
  if (!socket.valid()) {
    std::fprintf(stderr, "ct_group_sender: socket: %s\n", std::strerror(errno));
    return 1;
  }
  Message message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8U) | IPCTNL_MSG_CT_NEW;
  message.header.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  message.family.nfgen_family = AF_INET;
  message.family.version = NFNETLINK_V0;
  message.attribute.nla_len = 200;
  message.attribute.nla_type = CTA_TUPLE_ORIG;
  sockaddr_nl group{};
  group.nl_family = AF_NETLINK;
  group.nl_groups = 1U << (NFNLGRP_CONNTRACK_NEW - 1);
  for (long i = 0; i < count; ++i) {
    if (::sendto(socket.get(), &message, sizeof message, 0, reinterpret_cast<const sockaddr*>(&group), sizeof group) < 0) {
      std::fprintf(stderr, "ct_group_sender: sendto: %s\n", std::strerror(errno));
      return 1;
    }
  }
  return 0;
}
