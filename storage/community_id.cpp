// SPDX-License-Identifier: GPL-2.0-or-later
// SHA1_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP_Digest, but EVP_Digest
// allocates a context and looks the algorithm up in the provider on every call: measured at ~4.9k
// instructions per id against ~1.3k for the direct calls (bench/json_mapping_bench, callgrind),
// the largest single item of the JSON line. The direct functions are still exported and use the
// same assembly; this file only hashes, so it is the one place that opts out of the warning.
#define OPENSSL_SUPPRESS_DEPRECATED  // NOLINT(cppcoreguidelines-macro-usage): an OpenSSL switch

#include "storage/community_id.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <span>

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace ctaudit::storage {
namespace {

// The message types that come in request/reply pairs, each mapped to its counterpart. The tables
// are the spec's (taken from Zeek's ICMP analyzer, ICMP4_counterpart / ICMP6_counterpart): with the
// counterpart in the "destination port" slot, a request and its reply order into the same key.
std::optional<std::uint8_t> icmpv4Counterpart(std::uint8_t type) noexcept {
  switch (type) {
    case 8: return 0;    // echo request -> echo reply
    case 0: return 8;
    case 13: return 14;  // timestamp -> timestamp reply
    case 14: return 13;
    case 15: return 16;  // information request -> information reply
    case 16: return 15;
    case 10: return 9;   // router solicitation -> router advertisement
    case 9: return 10;
    case 17: return 18;  // address mask request -> address mask reply
    case 18: return 17;
    default: return std::nullopt;
  }
}

std::optional<std::uint8_t> icmpv6Counterpart(std::uint8_t type) noexcept {
  switch (type) {
    case 128: return 129;  // echo request -> echo reply
    case 129: return 128;
    case 130: return 131;  // multicast listener query -> report
    case 131: return 130;
    case 133: return 134;  // router solicitation -> router advertisement
    case 134: return 133;
    case 135: return 136;  // neighbor solicitation -> neighbor advertisement
    case 136: return 135;
    case 139: return 140;  // node information query -> response ("who are you")
    case 140: return 139;
    case 144: return 145;  // home agent address discovery request -> reply
    case 145: return 144;
    default: return std::nullopt;
  }
}

// The spec's protocol classes: which ones put two 16-bit values after the protocol byte.
bool hashesTransportPorts(Protocol protocol) noexcept {
  return protocol == Protocol::Tcp || protocol == Protocol::Udp || protocol == Protocol::Sctp;
}

// (address, port) strictly less than (address, port): the spec's ordering rule. Addresses of one
// family compare as big-endian byte strings, which is numeric order.
bool endpointLess(std::span<const std::uint8_t> a_addr, std::uint16_t a_port, std::span<const std::uint8_t> b_addr,
                  std::uint16_t b_port) noexcept {
  const auto order = std::lexicographical_compare_three_way(a_addr.begin(), a_addr.end(), b_addr.begin(),
                                                            b_addr.end());
  return order < 0 || (order == 0 && a_port < b_port);
}

// Largest input: seed 2 + two IPv6 addresses 32 + proto and padding 2 + two ports 4.
constexpr std::size_t kMaxInput = 40;
// SHA-1 is 20 bytes; base64 of 20 bytes is 28 characters, and EVP_EncodeBlock adds a NUL.
constexpr std::size_t kSha1Size = 20;
constexpr std::size_t kBase64Size = 28;

class HashInput {
public:
  void put8(std::uint8_t value) noexcept { bytes_[size_++] = value; }
  void put16(std::uint16_t value) noexcept {
    put8(static_cast<std::uint8_t>(value >> 8U));
    put8(static_cast<std::uint8_t>(value & 0xFFU));
  }
  void put(std::span<const std::uint8_t> data) noexcept {
    std::copy(data.begin(), data.end(), bytes_.begin() + static_cast<std::ptrdiff_t>(size_));
    size_ += data.size();
  }
  [[nodiscard]] const std::uint8_t* data() const noexcept { return bytes_.data(); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
  std::array<std::uint8_t, kMaxInput> bytes_{};
  std::size_t size_{0};
};

}  // namespace

std::string communityId(const FlowTuple& original, std::uint16_t seed) {
  std::array<char, kCommunityIdSize> id{};
  if (!communityId(original, id, seed)) {
    return {};
  }
  return {id.begin(), id.end()};
}

bool communityId(const FlowTuple& original, std::span<char, kCommunityIdSize> out, std::uint16_t seed) noexcept {
  std::span<const std::uint8_t> src = original.src.bytes();
  std::span<const std::uint8_t> dst = original.dst.bytes();
  const auto proto = static_cast<std::uint8_t>(original.protocol);

  bool with_ports = true;
  bool one_way = false;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  if (hashesTransportPorts(original.protocol)) {
    src_port = original.src_port;
    dst_port = original.dst_port;
  } else if (isIcmp(original.protocol)) {
    const auto counterpart = original.protocol == Protocol::Icmp ? icmpv4Counterpart(original.icmp_type)
                                                                 : icmpv6Counterpart(original.icmp_type);
    src_port = original.icmp_type;
    dst_port = counterpart.value_or(original.icmp_code);
    one_way = !counterpart.has_value();
  } else {
    with_ports = false;
  }

  // One-way ICMP messages keep their direction: their "ports" (type, code) have no reverse form.
  if (!one_way && !endpointLess(src, src_port, dst, dst_port)) {
    std::swap(src, dst);
    std::swap(src_port, dst_port);
  }

  HashInput input;
  input.put16(seed);
  input.put(src);
  input.put(dst);
  input.put8(proto);
  input.put8(0);
  if (with_ports) {
    input.put16(src_port);
    input.put16(dst_port);
  }

  static_assert(SHA_DIGEST_LENGTH == kSha1Size);
  std::array<unsigned char, kSha1Size> digest{};
  SHA_CTX context;
  if (SHA1_Init(&context) != 1 || SHA1_Update(&context, input.data(), input.size()) != 1 ||
      SHA1_Final(digest.data(), &context) != 1) {
    return false;
  }
  std::array<unsigned char, kBase64Size + 1> encoded{};
  const int encoded_size = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(kSha1Size));
  if (encoded_size != static_cast<int>(kBase64Size)) {
    return false;
  }
  static_assert(kCommunityIdSize == 2 + kBase64Size);
  out[0] = '1';
  out[1] = ':';
  std::copy_n(encoded.begin(), kBase64Size, out.begin() + 2);
  return true;
}

}  // namespace ctaudit::storage
