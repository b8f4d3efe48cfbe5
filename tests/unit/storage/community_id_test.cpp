// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/community_id.hpp"

#include <array>
#include <cstdint>
#include <string_view>

#include <gtest/gtest.h>

namespace ctaudit::storage {
namespace {

// One published test vector. For TCP, UDP, SCTP `a`/`b` are the source/destination ports; for
// ICMP and ICMPv6 they are the message type and code, as a conntrack tuple carries them; for other
// protocols they are unused (0).
struct Vector {
  unsigned proto;
  std::string_view src;
  std::string_view dst;
  std::uint16_t a;
  std::uint16_t b;
  std::string_view id;
};

// The test vectors of the Community ID spec, github.com/corelight/community-id-spec, directory
// baseline/ (commit b1fe530).
//
// README.md, "Default settings" table (seed 0) and "A custom seed=1 value" table. Their ICMP rows
// give the raw type and code.
constexpr std::array kReadmeSeed0 = std::to_array<Vector>({
    {6, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
    {6, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
    {17, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="},
    {17, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="},
    {132, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="},
    {132, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="},
    {1, "1.2.3.4", "5.6.7.8", 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="},
    {1, "5.6.7.8", "1.2.3.4", 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="},
    {1, "1.2.3.4", "5.6.7.8", 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk="},
    {58, "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="},
    {58, "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="},
    {58, "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10="},
    {46, "1.2.3.4", "5.6.7.8", 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768="},
    {46, "5.6.7.8", "1.2.3.4", 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768="},
    {46, "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="},
    {46, "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="},
});

constexpr std::array kReadmeSeed1 = std::to_array<Vector>({
    {6, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
    {6, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
    {17, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="},
    {17, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="},
    {132, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:uitchpn5MMGAQKBJh7bIr/bAr7s="},
    {132, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:uitchpn5MMGAQKBJh7bIr/bAr7s="},
    {1, "1.2.3.4", "5.6.7.8", 8, 0, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="},
    {1, "5.6.7.8", "1.2.3.4", 0, 0, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="},
    {1, "1.2.3.4", "5.6.7.8", 11, 0, "1:1DD7cWGC/Yg91YGsQeni8du3pIA="},
    {58, "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 128, 0, "1:IO27GQzPuCtNnwFvjWALMHu5tJE="},
    {58, "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", 129, 0, "1:IO27GQzPuCtNnwFvjWALMHu5tJE="},
    {58, "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 146, 0, "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s="},
    {46, "1.2.3.4", "5.6.7.8", 0, 0, "1:/buhqeOmaRCopOZFy9HnoJd5XW8="},
    {46, "5.6.7.8", "1.2.3.4", 0, 0, "1:/buhqeOmaRCopOZFy9HnoJd5XW8="},
    {46, "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 0, 0, "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="},
    {46, "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", "fe80:0001:0203:0405:0607:0809:0a0b:0c0d", 0, 0, "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="},
});

// baseline_deflt.json (seed 0) and baseline_seed1.json (seed 1), computed by pycommunityid over
// pcaps/combined.pcap.gz. Those files list ICMP rows with Zeek's mapped "ports" (type and
// counterpart type for request/reply messages, type and code for one-way ones); here they are
// turned back into the type and code a conntrack tuple has: for request/reply types the code is 0
// (and not hashed), for one-way types it is the second value.
constexpr std::array kBaselineSeed0 = std::to_array<Vector>({
    {58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck="},
    {58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck="},
    {58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="},
    {58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0="},
    {58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
    {58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
    {58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 0, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="},
    {58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 0, "1:pkvHqCL88/tg1k4cPigmZXUtL00="},
    {1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {1, "192.168.0.1", "192.168.0.89", 0, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="},
    {6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
    {46, "10.1.12.2", "10.1.12.1", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
});

constexpr std::array kBaselineSeed1 = std::to_array<Vector>({
    {58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
    {58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
    {58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 0, "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="},
    {58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 0, "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="},
    {58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="},
    {58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="},
    {58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 0, "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="},
    {58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 0, "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="},
    {58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 0, "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="},
    {58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 0, "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="},
    {1, "192.168.0.89", "192.168.0.1", 8, 0, "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
    {1, "192.168.0.1", "192.168.0.89", 0, 0, "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
    {1, "10.0.0.1", "10.0.0.2", 11, 0, "1:XjUibYHaafLQ3pxQeiMI8g25q20="},
    {6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {132, "192.168.170.8", "192.168.170.56", 7, 7, "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
    {132, "192.168.170.56", "192.168.170.8", 7, 7, "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
    {6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
    {17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
    {46, "10.1.12.1", "10.1.12.2", 0, 0, "1:rYir8gphR31noO9iDRQmF/BteEI="},
    {46, "10.1.12.2", "10.1.12.1", 0, 0, "1:rYir8gphR31noO9iDRQmF/BteEI="},
});

FlowTuple tupleOf(const Vector& v) {
  FlowTuple tuple;
  tuple.src = IpAddress::parse(v.src).value();
  tuple.dst = IpAddress::parse(v.dst).value();
  tuple.protocol = static_cast<Protocol>(v.proto);
  if (isIcmp(tuple.protocol)) {
    tuple.icmp_type = static_cast<std::uint8_t>(v.a);
    tuple.icmp_code = static_cast<std::uint8_t>(v.b);
    tuple.icmp_id = 0x4d2;  // not part of the hash; a non-zero value shows that
  } else {
    tuple.src_port = v.a;
    tuple.dst_port = v.b;
  }
  return tuple;
}

template <std::size_t N>
void expectAll(const std::array<Vector, N>& vectors, std::uint16_t seed) {
  for (const Vector& v : vectors) {
    EXPECT_EQ(communityId(tupleOf(v), seed), v.id)
        << "proto " << v.proto << " " << v.src << " -> " << v.dst << " (" << v.a << ", " << v.b << ") seed " << seed;
  }
}

TEST(CommunityIdTest, SpecReadmeTableSeed0) { expectAll(kReadmeSeed0, 0); }

TEST(CommunityIdTest, SpecReadmeTableSeed1) { expectAll(kReadmeSeed1, 1); }

TEST(CommunityIdTest, SpecBaselineJsonSeed0) { expectAll(kBaselineSeed0, 0); }

TEST(CommunityIdTest, SpecBaselineJsonSeed1) { expectAll(kBaselineSeed1, 1); }

FlowTuple icmpTuple(const char* src, const char* dst, std::uint8_t type, std::uint16_t id) {
  FlowTuple tuple;
  tuple.src = IpAddress::parse(src).value();
  tuple.dst = IpAddress::parse(dst).value();
  tuple.protocol = Protocol::Icmp;
  tuple.icmp_type = type;
  tuple.icmp_id = id;
  return tuple;
}

// A conntrack entry for a ping: the original tuple is the echo request, the reply tuple the echo
// reply with the addresses swapped. Both must give the spec's value for that pair.
TEST(CommunityIdTest, EchoRequestAndItsReplyTupleShareTheId) {
  const FlowTuple request = icmpTuple("1.2.3.4", "5.6.7.8", 8, 7);
  const FlowTuple reply = icmpTuple("5.6.7.8", "1.2.3.4", 0, 7);
  EXPECT_EQ(communityId(request), "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=");
  EXPECT_EQ(communityId(reply), communityId(request));
}

TEST(CommunityIdTest, IcmpIdIsNotHashed) {
  EXPECT_EQ(communityId(icmpTuple("1.2.3.4", "5.6.7.8", 8, 1)), communityId(icmpTuple("1.2.3.4", "5.6.7.8", 8, 65535)));
}

// The spec hashes ports for TCP, UDP and SCTP only; DCCP and UDP-Lite fall under "other IP-borne
// protocols", so their ports must not change the id (that is what other implementations compute).
TEST(CommunityIdTest, DccpAndUdpLiteHashNoPorts) {
  for (const Protocol protocol : {Protocol::Dccp, Protocol::UdpLite, Protocol::Gre}) {
    FlowTuple with_ports;
    with_ports.src = IpAddress::parse("1.2.3.4").value();
    with_ports.dst = IpAddress::parse("5.6.7.8").value();
    with_ports.protocol = protocol;
    with_ports.src_port = 1122;
    with_ports.dst_port = 3344;
    FlowTuple without_ports = with_ports;
    without_ports.src_port = 0;
    without_ports.dst_port = 0;
    EXPECT_EQ(communityId(with_ports), communityId(without_ports)) << protocolName(protocol);
  }
}

TEST(CommunityIdTest, EqualAddressesAreOrderedByPort) {
  FlowTuple out;
  out.src = IpAddress::parse("127.0.0.1").value();
  out.dst = out.src;
  out.protocol = Protocol::Tcp;
  out.src_port = 40000;
  out.dst_port = 80;
  FlowTuple back = out;
  std::swap(back.src_port, back.dst_port);
  EXPECT_EQ(communityId(out), communityId(back));
  EXPECT_NE(communityId(out, 0), communityId(out, 1));
}

}  // namespace
}  // namespace ctaudit::storage
