// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/command_line.hpp"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

// No default config file: one installed on the machine must not change what the tests parse.
const std::filesystem::path kNoDefaultFile{"/nonexistent/ctaudit-test/ctauditd.toml"};

Result<DaemonCommand> parse(std::vector<std::string_view> args) { return parseDaemonCommandLine(args, kNoDefaultFile); }

const DaemonConfig& configOf(const Result<DaemonCommand>& command) {
  return std::get<RunCommand>(*command).config;
}

TEST(CommandLineTest, DefaultsAreTheDocumentedOnes) {
  const auto command = parse({});
  ASSERT_TRUE(command);
  const auto& config = configOf(command);
  EXPECT_EQ(config.db_path, "/var/lib/ctaudit/flows.db");
  ASSERT_TRUE(config.jsonl_path);
  EXPECT_EQ(*config.jsonl_path, "/var/log/ctaudit/flows.jsonl");
  EXPECT_EQ(config.events, (EventMask{true, true, true}));
  EXPECT_EQ(config.flush_interval, std::chrono::seconds{1});
  EXPECT_TRUE(config.apply_sysctls);
  EXPECT_FALSE(config.jsonl_updates);
  EXPECT_EQ(config.receive_buffer_bytes, std::size_t{256} << 20U);
  EXPECT_EQ(config.queue_max_bytes, std::size_t{512} << 20U);
  EXPECT_FALSE(config.reliable);
  ASSERT_TRUE(config.stats_file);
  EXPECT_EQ(*config.stats_file, "/var/lib/ctaudit/ctauditd.prom");
}

TEST(CommandLineTest, PipelineFlags) {
  const auto command = parse({"--queue-max", "64M", "--reliable", "--stats-file=/run/ctaudit/x.prom"});
  ASSERT_TRUE(command) << command.error().detail;
  const auto& config = configOf(command);
  EXPECT_EQ(config.queue_max_bytes, std::size_t{64} << 20U);
  EXPECT_TRUE(config.reliable);
  ASSERT_TRUE(config.stats_file);
  EXPECT_EQ(*config.stats_file, "/run/ctaudit/x.prom");
  EXPECT_FALSE(configOf(parse({"--stats-file", "none"})).stats_file);
  EXPECT_FALSE(parse({"--queue-max", "512K"})) << "below 1M";
  EXPECT_FALSE(parse({"--queue-max", "lots"}));
  EXPECT_FALSE(parse({"--reliable=yes"}));
  EXPECT_FALSE(parse({"--stats-file="}));
}

TEST(CommandLineTest, PipelineKeysInTheConfigFile) {
  testing::TempDir dir;
  const auto path = dir / "ctauditd.toml";
  std::ofstream(path) << "queue-max = \"2G\"\nreliable = true\nstats-file = \"none\"\n";
  const auto command = parse({"--config", path.string()});
  ASSERT_TRUE(command) << command.error().detail;
  const auto& config = configOf(command);
  EXPECT_EQ(config.queue_max_bytes, std::size_t{2} << 30U);
  EXPECT_TRUE(config.reliable);
  EXPECT_FALSE(config.stats_file);
  std::ofstream(path) << "reliable = \"yes\"\n";
  EXPECT_FALSE(parse({"--config", path.string()}));
}

TEST(CommandLineTest, HelpListsEveryOption) {
  const std::string help = daemonUsage(kNoDefaultFile);
  for (const char* flag : {"--db", "--jsonl", "--events", "--jsonl-updates", "--no-sysctl", "--flush-interval",
                           "--max-batch-rows", "--receive-buffer", "--queue-max", "--reliable", "--stats-file",
                           "--config", "--log-level", "--user"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

TEST(CommandLineTest, ParsesEveryFlagInBothSpellings) {
  const auto command = parse({"--db", "/tmp/x.db", "--jsonl=none", "--events", "new,destroy", "--jsonl-updates",
                              "--no-sysctl", "--flush-interval=250ms", "--receive-buffer", "8M",
                              "--max-batch-rows", "100", "--log-level", "debug"});
  ASSERT_TRUE(command) << command.error().detail;
  const auto& config = configOf(command);
  EXPECT_EQ(config.db_path, "/tmp/x.db");
  EXPECT_FALSE(config.jsonl_path);
  EXPECT_EQ(config.events, (EventMask{true, false, true}));
  EXPECT_TRUE(config.jsonl_updates);
  EXPECT_FALSE(config.apply_sysctls);
  EXPECT_EQ(config.flush_interval, std::chrono::milliseconds{250});
  EXPECT_EQ(config.receive_buffer_bytes, std::size_t{8} << 20U);
  EXPECT_EQ(config.max_batch_rows, 100U);
  EXPECT_EQ(config.log_level, spdlog::level::debug);
}

TEST(CommandLineTest, StatsFileDefaultsToBesideTheDatabase) {
  const auto defaults = parse({});
  ASSERT_TRUE(defaults);
  EXPECT_EQ(*configOf(defaults).stats_file, "/var/lib/ctaudit/ctauditd.prom");
  const auto moved = parse({"--db", "/srv/audit/flows.db"});
  ASSERT_TRUE(moved);
  EXPECT_EQ(*configOf(moved).stats_file, "/srv/audit/ctauditd.prom");
  const auto chosen = parse({"--stats-file", "/run/ct.prom", "--db", "/srv/audit/flows.db"});
  ASSERT_TRUE(chosen);
  EXPECT_EQ(*configOf(chosen).stats_file, "/run/ct.prom");
  const auto off = parse({"--stats-file", "none"});
  ASSERT_TRUE(off);
  EXPECT_FALSE(configOf(off).stats_file);
}

TEST(CommandLineTest, HelpAndVersion) {
  EXPECT_TRUE(std::holds_alternative<HelpCommand>(*parse({"--help"})));
  EXPECT_TRUE(std::holds_alternative<VersionCommand>(*parse({"--version"})));
}

TEST(CommandLineTest, BadInputIsAUsageErrorThatSaysWhat) {
  const auto unknown = parse({"--frobnicate"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::Usage);
  EXPECT_NE(unknown.error().detail.find("--frobnicate"), std::string::npos);
  EXPECT_FALSE(parse({"--db"}));
  EXPECT_FALSE(parse({"--events", "new,bogus"}));
  EXPECT_FALSE(parse({"--events", ""}));
  // Found by an exploratory run: with new alone every flow stayed open, and `who` named its
  // subscriber for any later time.
  for (const char* events : {"new", "new,update", "update"}) {
    const auto refused = parse({"--events", events});
    ASSERT_FALSE(refused) << events;
    EXPECT_NE(refused.error().detail.find("leaves out destroy"), std::string::npos) << refused.error().detail;
  }
  EXPECT_TRUE(parse({"--events", "destroy"})) << "destroy alone: each flow written once, at its end";
  EXPECT_FALSE(parse({"--flush-interval", "1parsec"}));
  EXPECT_FALSE(parse({"--flush-interval", "1ms"}));
  EXPECT_FALSE(parse({"--receive-buffer", "lots"}));
  EXPECT_FALSE(parse({"--log-level", "loud"}));
  EXPECT_FALSE(parse({"--no-sysctl=1"}));
  EXPECT_FALSE(parse({"stray"}));
}

// Values found by running the daemon with them: each was taken and did something else.
TEST(CommandLineTest, ValuesThatWouldBeMisreadAreRefused) {
  const auto error = [](std::vector<std::string_view> args) {
    const auto command = parse(std::move(args));
    return command ? std::string("accepted") : command.error().detail;
  };
  // A buffer of one byte held no event ("room for about 1 events"). Above the kernel's 2G the start
  // warns and uses 2G (a config written for an older version must still start).
  EXPECT_NE(error({"--receive-buffer", "1"}).find("give at least 4K"), std::string::npos);
  EXPECT_EQ(configOf(parse({"--receive-buffer", "8G"})).receive_buffer_bytes, std::size_t{8} << 30U);
  EXPECT_EQ(configOf(parse({"--receive-buffer", "2G"})).receive_buffer_bytes, std::size_t{2} << 30U);
  EXPECT_EQ(configOf(parse({"--receive-buffer", "16K"})).receive_buffer_bytes, std::size_t{16} << 10U);
  // "none" turns the JSON lines off; for the database it made a file named none.
  EXPECT_NE(error({"--db", "none"}).find("cannot be turned off"), std::string::npos);
  // "logs/" was created as a directory, and only then did the database's open fail.
  EXPECT_EQ(error({"--db", "logs/"}), "--db: 'logs/' names a directory, not a file; give a file's path, e.g. logs/flows.db");
  EXPECT_EQ(error({"--jsonl", "/var/log/ctaudit/."}),
            "--jsonl: '/var/log/ctaudit/.' names a directory, not a file; give a file's path, e.g. "
            "/var/log/ctaudit/flows.jsonl");
  EXPECT_NE(error({"--stats-file", ".."}).find("'..' names a directory"), std::string::npos);
  EXPECT_EQ(configOf(parse({"--jsonl", "-"})).jsonl_path, std::filesystem::path("-"));
}

TEST(CommandLineTest, AnOverlongArgumentIsRefusedBeforeTheConfigFileIsRead) {
  const std::string pasted = "--db=" + std::string(100'000, 'a');
  const auto command = parse({"--config", "/nonexistent/ctauditd.toml", pasted});
  ASSERT_FALSE(command);
  EXPECT_TRUE(command.error().detail.starts_with("argument 3 is 100005 bytes long, beginning '--db=aaa"))
      << command.error().detail;
  const auto help = parse({pasted, "--help"});  // help wins over every wrong argument
  ASSERT_TRUE(help);
  EXPECT_TRUE(std::holds_alternative<HelpCommand>(*help));
}

TEST(CommandLineTest, AConfigFileMustBeARegularFileOfSensibleSize) {
  testing::TempDir dir;
  const auto fifo = dir / "fifo.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto from_fifo = parse({"--config", fifo.string()});  // used to wait for a writer
  ASSERT_FALSE(from_fifo);
  EXPECT_NE(from_fifo.error().detail.find("is not a regular file"), std::string::npos) << from_fifo.error().detail;
  const auto zero = parse({"--config", "/dev/zero"});  // used to read until memory ran out
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().detail.find("is not a regular file"), std::string::npos) << zero.error().detail;
  const auto big = dir / "big.toml";
  std::ofstream(big) << std::string((1U << 20U) + 1, '#');
  const auto from_big = parse({"--config", big.string()});
  ASSERT_FALSE(from_big);
  EXPECT_NE(from_big.error().detail.find("more than a config file's 1 MiB"), std::string::npos)
      << from_big.error().detail;
}

TEST(CommandLineTest, ConfigFileIsTheBaseAndFlagsWin) {
  testing::TempDir dir;
  const auto path = dir / "ctauditd.toml";
  std::ofstream(path) << "# test\ndb = \"/srv/a.db\"\njsonl = \"-\"\nevents = [\"new\", \"destroy\"]\n"
                         "flush-interval = \"2s\"\nsysctl = false\n";
  const std::string file = path.string();
  const auto command = parse({"--db", "/srv/b.db", "--config", file});
  ASSERT_TRUE(command) << command.error().detail;
  const auto& config = configOf(command);
  EXPECT_EQ(config.db_path, "/srv/b.db");
  EXPECT_EQ(*config.jsonl_path, "-");
  EXPECT_EQ(config.events, (EventMask{true, false, true}));
  EXPECT_EQ(config.flush_interval, std::chrono::seconds{2});
  EXPECT_FALSE(config.apply_sysctls);
}

TEST(CommandLineTest, ConfigErrorsNameFileAndLine) {
  testing::TempDir dir;
  const auto path = dir / "bad.toml";
  std::ofstream(path) << "db = \"/srv/a.db\"\n\ncolour = \"blue\"\n";
  const std::string file = path.string();
  const auto unknown = parse({"--config", file});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::Config);
  EXPECT_NE(unknown.error().detail.find(file + ":3:"), std::string::npos) << unknown.error().detail;

  std::ofstream(path) << "sysctl = \"yes\"\n";
  const auto wrong_type = parse({"--config", file});
  ASSERT_FALSE(wrong_type);
  EXPECT_NE(wrong_type.error().detail.find(file + ":1:"), std::string::npos) << wrong_type.error().detail;

  std::ofstream(path) << "db = \n";
  EXPECT_FALSE(parse({"--config", file}));
  EXPECT_FALSE(parse({"--config", (dir / "missing.toml").string()}));
}

TEST(CommandLineTest, UserComesFromTheFlagOrTheFile) {
  EXPECT_FALSE(configOf(parse({})).user);
  EXPECT_EQ(configOf(parse({"--user", "ctaudit"})).user, "ctaudit");
  EXPECT_EQ(configOf(parse({"--user=nobody"})).user, "nobody");
  EXPECT_FALSE(parse({"--user="}));
  testing::TempDir dir;
  const auto path = dir / "ctauditd.toml";
  std::ofstream(path) << "user = \"ctaudit\"\n";
  EXPECT_EQ(configOf(parse({"--config", path.string()})).user, "ctaudit");
  std::ofstream(path) << "user = 65534\n";
  EXPECT_FALSE(parse({"--config", path.string()}));
}

}  // namespace
}  // namespace ctaudit::daemon
