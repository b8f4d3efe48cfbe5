// SPDX-License-Identifier: GPL-2.0-or-later
// Writes the seed corpus of conntrack_decoder_fuzz (tests/data/fuzz/decoder/) with
// CtMessageBuilder: `make_decoder_seeds DIR`. Rerun it when the builder learns new attributes.
#include <linux/netfilter/nfnetlink_conntrack.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/ct_message_builder.hpp"

int main(int argc, char** argv) {
  using namespace ctaudit;
  using namespace ctaudit::testing;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 64;
  }
  const std::filesystem::path dir = argv[1];
  const Timestamp start = fromUnixNanos(1'795'617'300'100'000'000);
  const Timestamp stop = fromUnixNanos(1'795'617'340'200'000'000);
  const Timestamp event = fromUnixNanos(1'795'617'348'999'000'000);
  const Endpoint snat{*IpAddress::parse("203.0.113.1"), 40001};
  const Endpoint snat6{*IpAddress::parse("2001:db8:2::fe"), 61000};
  const Endpoint dnat{*IpAddress::parse("10.0.0.5"), 8080};

  const std::vector<std::pair<std::string, CtMessageBuilder>> seeds{
      {"tcp4_new", CtMessageBuilder{}.tcpState(1).eventTimestamp(event)},
      {"tcp4_snat_dnat_update",
       CtMessageBuilder{}.updateEvent().snat(snat).dnat(dnat).tcpState(3).mark(7).zone(2).eventTimestamp(event)},
      {"tcp6_snat_destroy", CtMessageBuilder{}
                                .destroyEvent()
                                .original(tcpTuple("2001:db8:1::2", 40000, "2001:db8:2::9", 443))
                                .snat(snat6)
                                .id(0x9000'0001U)
                                .tcpState(7)
                                .countersOriginal(10, 1000)
                                .countersReply(8, 9000)
                                .timestampStart(start)
                                .timestampStop(stop)
                                .eventTimestamp(event)},
      {"udp4_dump", CtMessageBuilder{}
                        .dumpRow()
                        .original(udpTuple("100.64.0.2", 5353, "198.51.100.1", 53))
                        .snat(snat)
                        .counters32Original(1, 60)
                        .counters32Reply(1, 120)
                        .timestampStart(start)},
      {"icmp4_snat_new", CtMessageBuilder{}.original(icmpTuple("100.64.0.2", "198.51.100.1", 8, 0, 77)).snat(snat)},
      {"icmp6_update", CtMessageBuilder{}.updateEvent().original(icmpTuple("2001:db8::1", "2001:db8::2", 128, 0, 9))},
      {"gre4_destroy", CtMessageBuilder{}
                           .destroyEvent()
                           .original(greTuple("10.0.0.1", "10.0.0.2", 0x1234, 0x5678))
                           .originalTupleZone(9)
                           .replyTupleZone(9)
                           .countersOriginal(0, 0)
                           .eventTimestamp(event)
                           .eventTimestampPadding()},
      {"unknown_attributes", CtMessageBuilder{}
                                 .extraAttribute({}, 99, {std::byte{1}, std::byte{2}, std::byte{3}})
                                 .extraAttribute({CTA_TUPLE_ORIG}, 17, std::vector<std::byte>(4))},
  };
  std::filesystem::create_directories(dir);
  for (const auto& [name, builder] : seeds) {
    const auto bytes = builder.build();
    std::ofstream out(dir / (name + ".bin"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
      return 73;
    }
  }
  return 0;
}
