// SPDX-License-Identifier: GPL-2.0-or-later
// Issue #4: once warm, the daemon's path from netlink bytes to the JSON-lines file allocates
// nothing per event: decodeConntrack -> Pipeline (FlowTable) -> Batcher -> JsonLinesSink. Counted
// with the counting replacement of the global operator new (tests/support/counting_allocator).
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include "daemon/batcher.hpp"
#include "daemon/conntrack_decoder.hpp"
#include "daemon/flow_table.hpp"
#include "daemon/pipeline.hpp"
#include "storage/jsonl_sink.hpp"
#include "tests/support/counting_allocator.hpp"
#include "tests/support/ct_message_builder.hpp"
#include "tests/support/flow_builders.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;
using testing::at;
using testing::CtMessageBuilder;
using testing::portTuple;

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// NEW then DESTROY of `flows` distinct masqueraded UDP flows, as the kernel sends them.
std::vector<std::vector<std::byte>> messages(std::uint32_t first_id, std::uint32_t flows) {
  std::vector<std::vector<std::byte>> out;
  for (std::uint32_t i = 0; i < flows; ++i) {
    const auto port = static_cast<std::uint16_t>(10000 + (first_id + i) % 50000);
    const FlowTuple original = portTuple(Protocol::Udp, "100.64.0.2", port, "198.51.100.10", 443);
    const Endpoint translated{testing::ip("203.0.113.1"), static_cast<std::uint16_t>(port + 1)};
    out.push_back(CtMessageBuilder{}.newEvent().id(first_id + i).original(original).snat(translated).build());
    out.push_back(CtMessageBuilder{}
                      .destroyEvent()
                      .id(first_id + i)
                      .original(original)
                      .snat(translated)
                      .countersOriginal(3, 300)
                      .countersReply(2, 400)
                      .timestampStart(at(1s))
                      .timestampStop(at(2s))
                      .build());
  }
  return out;
}

TEST(HotPathAllocationTest, DecodeTableBatchAndJsonLinesAllocateNothingPerEventOnceWarm) {
  const testing::TempDir dir;
  auto sink = storage::JsonLinesSink::open(dir / "flows.jsonl", {"gw1.example.net"}, false, quiet());
  ASSERT_TRUE(sink);
  Batcher::Options options;
  options.max_rows = 256;
  Batcher batcher({{"jsonl", sink->get(), "jsonl"}}, options, quiet());
  FlowTable table;
  Pipeline pipeline(table, batcher, quiet());
  const DecodeContext context{at(1s), MessageOrigin::Event};

  const auto run = [&](const std::vector<std::vector<std::byte>>& batch) {
    for (const auto& message : batch) {
      auto record = decodeConntrack(message, context);
      ASSERT_TRUE(record) << record.error().detail;
      pipeline.handle(PipelineItem{std::move(record).value()}, at(1s));
    }
  };
  // Warm up: buffers, the table's pool and the sink's buffer reach their working size.
  run(messages(1, 2048));
  const auto measured = messages(100'000, 2048);  // built before counting
  const std::uint64_t before = testing::allocationCount();
  run(measured);
  const std::uint64_t allocations = testing::allocationCount() - before;
  EXPECT_EQ(allocations, 0U) << "for " << measured.size() << " events";
  EXPECT_EQ((*sink)->stats().records_written, 8192U) << "every full batch of 256 was written";
  EXPECT_EQ(table.openFlows(), 0U);
}

// The counter above does count: a sanity check, so that the test above cannot pass by accident.
// The allocation happens in another library (a 30-character string, past the small-string
// buffer), where the compiler cannot elide it as it may a new/delete pair it sees whole.
TEST(HotPathAllocationTest, TheCounterSeesAnAllocation) {
  const std::uint64_t before = testing::allocationCount();
  const std::string text = formatRfc3339(at(1s));
  EXPECT_EQ(text.size(), kRfc3339Size);
  EXPECT_GE(testing::allocationCount() - before, 1U);
}

}  // namespace
}  // namespace ctaudit::daemon
