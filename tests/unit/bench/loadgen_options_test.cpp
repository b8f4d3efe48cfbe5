// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/loadgen_options.hpp"

#include <variant>
#include <vector>

#include <gtest/gtest.h>

namespace ctaudit::bench {
namespace {

Result<std::variant<LoadgenOptions, LoadgenHelp>> parse(std::vector<std::string_view> args) {
  return parseLoadgenOptions(args);
}

TEST(LoadgenOptionsTest, ParsesEveryOption) {
  const auto parsed = parse({"--count", "500", "--duration=2s", "--rate", "20000", "--live", "100", "--ends", "random", "--batch=8",
                             "--keep", "--proto", "udp", "--family", "mix", "--hosts", "50", "--first-index",
                             "7000", "--nat-ports", "40000-40999", "--timeout", "60", "--acks", "errors", "--format",
                             "json", "--progress"});
  ASSERT_TRUE(parsed) << parsed.error().detail;
  const auto& options = std::get<LoadgenOptions>(*parsed);
  EXPECT_EQ(options.count, 500U);
  EXPECT_EQ(options.duration, std::chrono::seconds{2});
  EXPECT_EQ(options.rate, 20000.0);
  EXPECT_EQ(options.live, 100U);
  EXPECT_EQ(options.ends, EndOrder::Random);
  EXPECT_EQ(options.batch, 8U);
  EXPECT_TRUE(options.delete_flows);
  EXPECT_TRUE(options.keep_at_exit);
  EXPECT_EQ(options.plan.protocols, ProtocolMix::Udp);
  EXPECT_EQ(options.plan.families, FamilyMix::Mixed);
  EXPECT_EQ(options.plan.hosts, 50U);
  EXPECT_EQ(options.first_index, 7000U);
  EXPECT_EQ(options.plan.nat_port_min, 40000);
  EXPECT_EQ(options.plan.nat_port_max, 40999);
  EXPECT_EQ(options.create.timeout_seconds, 60U);
  EXPECT_FALSE(options.create.ack_every_message);
  EXPECT_EQ(options.format, SummaryFormat::Json);
  EXPECT_TRUE(options.progress);
}

TEST(LoadgenOptionsTest, RateMaxAndNoDelete) {
  const auto parsed = parse({"--count", "1", "--rate", "max", "--no-delete"});
  ASSERT_TRUE(parsed) << parsed.error().detail;
  const auto& options = std::get<LoadgenOptions>(*parsed);
  EXPECT_EQ(options.rate, 0.0);
  EXPECT_EQ(options.ends, EndOrder::Fifo);  // the default
  EXPECT_FALSE(options.delete_flows);
  EXPECT_TRUE(options.keep_at_exit);
}

TEST(LoadgenOptionsTest, OptionsAreReadInOrderUntilHelp) {
  const auto parsed = parse({"--bogus", "--help"});
  ASSERT_FALSE(parsed);  // options are read in order: the unknown one comes first
  const auto help = parse({"--help"});
  ASSERT_TRUE(help);
  EXPECT_TRUE(std::holds_alternative<LoadgenHelp>(*help));
}

TEST(LoadgenOptionsTest, RefusesWhatCannotWork) {
  const std::vector<std::vector<std::string_view>> bad{
      {},                                                   // how much?
      {"--count", "0"},                                     // nothing
      {"--count", "10", "--batch", "2000"},                 // batch too large
      {"--count", "10", "--rate", "fast"},                  // not a rate
      {"--count", "10", "--live", "5", "--no-delete"},      // a cap needs deletes
      {"--count", "10", "--nat-ports", "2000-1000"},        // empty range
      {"--count", "10", "--nat-ports", "40000-40009", "--live", "11"},  // mappings would collide
      {"--count", "10", "--proto", "sctp"},
      {"--count", "10", "--ends", "lifo"},
      {"--count", "10", "--family", "5"},
      {"--count", "10", "--duration", "0"},
      {"--count"},                                          // value missing
      {"--count", "10", "--keep=yes"},
      {"stray"},
  };
  for (const auto& args : bad) {
    const auto parsed = parse(args);
    EXPECT_FALSE(parsed) << "accepted: " << (args.empty() ? std::string_view{"(nothing)"} : args.front());
    if (!parsed) {
      EXPECT_EQ(parsed.error().code, Errc::Usage);
    }
  }
}

}  // namespace
}  // namespace ctaudit::bench
