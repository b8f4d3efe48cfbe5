// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/service_notifier.hpp"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "flow/unique_c.hpp"
#include "tests/support/scoped_env.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

using testing::ScopedEnv;

// The service manager's end of NOTIFY_SOCKET: a datagram socket bound at a path, as systemd has.
class FakeServiceManager {
public:
  explicit FakeServiceManager(std::string path) : path_(std::move(path)) {}

  // Binds the socket; until then a message to the path fails (ENOENT).
  void listen() {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(fd_.valid()) << std::strerror(errno);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(path_.size(), sizeof(address.sun_path));
    path_.copy(address.sun_path, path_.size());
    ASSERT_EQ(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
  }

  // The next message, or "" when none comes within a second.
  std::string receive() {
    pollfd ready{fd_.get(), POLLIN, 0};
    if (::poll(&ready, 1, 1000) != 1) {
      return {};
    }
    std::array<char, 4096> buffer{};
    const ssize_t size = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
    return size > 0 ? std::string(buffer.data(), static_cast<std::size_t>(size)) : std::string{};
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
  std::string path_;
  UniqueFd fd_;
};

struct NotifierUnderTest {
  testing::TempDir dir;
  FakeServiceManager manager{(dir / "notify").string()};
  ScopedEnv socket{"NOTIFY_SOCKET", manager.path().c_str()};
  ScopedEnv watchdog_usec{"WATCHDOG_USEC", nullptr};
  ScopedEnv watchdog_pid{"WATCHDOG_PID", nullptr};
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_lines{std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16)};
  ServiceNotifier notifier{std::make_shared<spdlog::logger>("test", log_lines)};
};

TEST(ServiceNotifierTest, TellsTheManagerEachStepOfTheServicesLife) {
  NotifierUnderTest test;
  test.manager.listen();
  ASSERT_TRUE(test.notifier.enabled());
  EXPECT_FALSE(test.notifier.watchdogTimeout());

  // A schema upgrade before READY=1 asks for more start time, with a reason systemctl shows.
  test.notifier.extendStart(std::chrono::seconds{30}, "upgrading the flow database's schema");
  EXPECT_EQ(test.manager.receive(), "EXTEND_TIMEOUT_USEC=30000000\nSTATUS=upgrading the flow database's schema");
  test.notifier.ready("ready: 3 flow(s) in the kernel's table at start");
  EXPECT_EQ(test.manager.receive(), "READY=1\nSTATUS=ready: 3 flow(s) in the kernel's table at start");
  test.notifier.watchdog();
  EXPECT_EQ(test.manager.receive(), "WATCHDOG=1");
  test.notifier.status("12 events/s");
  EXPECT_EQ(test.manager.receive(), "STATUS=12 events/s");
  test.notifier.stopping("stopping: writing the last batch");
  EXPECT_EQ(test.manager.receive(), "STOPPING=1\nSTATUS=stopping: writing the last batch");
}

TEST(ServiceNotifierTest, AManagerThatCannotBeReachedIsLoggedOnceAndTheNextMessageGetsThrough) {
  NotifierUnderTest test;  // nothing listens at the path yet
  test.notifier.status("one");
  test.notifier.status("two");
  auto lines = test.log_lines->last_formatted();
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_NE(lines[0].find("cannot notify the service manager"), std::string::npos) << lines[0];

  test.manager.listen();
  test.notifier.status("three");
  EXPECT_EQ(test.manager.receive(), "STATUS=three");
  lines = test.log_lines->last_formatted();
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_NE(lines[1].find("notifying the service manager again"), std::string::npos) << lines[1];
}

TEST(ServiceNotifierTest, WithoutNotifySocketNothingIsSent) {
  const ScopedEnv socket{"NOTIFY_SOCKET", nullptr};
  const auto log_lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  ServiceNotifier notifier{std::make_shared<spdlog::logger>("test", log_lines)};
  EXPECT_FALSE(notifier.enabled());
  notifier.extendStart(std::chrono::seconds{30}, "upgrading");
  notifier.ready("ready");
  EXPECT_TRUE(log_lines->last_formatted().empty());
}

// The daemon's order: the JSON lines first, the database last (Daemon::openSinks). The JSON lines
// count other records, so that a status taken from the wrong sink shows.
MetricsSnapshot snapshot(std::uint64_t messages, std::uint64_t written) {
  MetricsSnapshot s;
  s.reader.messages = messages;
  s.sinks.push_back(Batcher::SinkState{"jsonl", 2 * written + 7, 0, 0, 0, false, false, 0});
  s.sinks.push_back(Batcher::SinkState{"sqlite", written, 0, 0, 0, false, false, 0});
  return s;
}

TEST(ServiceNotifierTest, ShortCountsStayShort) {
  EXPECT_EQ(shortCount(0), "0");
  EXPECT_EQ(shortCount(999), "999");
  EXPECT_EQ(shortCount(1000), "1.0k");
  EXPECT_EQ(shortCount(12'345), "12.3k");
  EXPECT_EQ(shortCount(999'949), "999.9k");
  EXPECT_EQ(shortCount(999'950), "1.0M");  // never "1000.0k"
  EXPECT_EQ(shortCount(1'234'567), "1.2M");
  EXPECT_EQ(shortCount(3'400'000'000), "3.4G");
  EXPECT_EQ(shortCount(5'000'000'000'000), "5000.0G");
}

TEST(ServiceNotifierTest, StatusGivesRateTotalsAndLoss) {
  const MetricsSnapshot before = snapshot(1000, 500);
  MetricsSnapshot now = snapshot(7170, 1'234'567);
  now.open_flows = 532;
  EXPECT_EQ(formatServiceStatus(now, before, std::chrono::seconds{5}),
            "1234 events/s; 1.2M records written, 0 events lost; 532 flows open");
}

TEST(ServiceNotifierTest, LostCountsKernelQueueAndSinkDrops) {
  MetricsSnapshot now = snapshot(10, 10);
  now.reader.kernel_drops = 3;
  now.reader.queue_dropped = 4;
  now.sinks[1].dropped = 5;
  EXPECT_EQ(formatServiceStatus(now, now, std::chrono::seconds{1}),
            "0 events/s; 10 records written, 12 events lost; 0 flows open");
}

TEST(ServiceNotifierTest, NoTimeOrNoSinkIsNotADivisionByZero) {
  const MetricsSnapshot before = snapshot(0, 0);
  MetricsSnapshot now = snapshot(100, 0);
  now.sinks.clear();
  EXPECT_EQ(formatServiceStatus(now, before, std::chrono::nanoseconds{0}),
            "0 events/s; 0 records written, 0 events lost; 0 flows open");
  // A counter that went backwards (it never should) gives no rate rather than a huge one.
  EXPECT_EQ(formatServiceStatus(before, snapshot(100, 0), std::chrono::seconds{1}).substr(0, 11), "0 events/s;");
}

}  // namespace
}  // namespace ctaudit::daemon
