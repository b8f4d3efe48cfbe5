// SPDX-License-Identifier: GPL-2.0-or-later
// The table of settings (daemon/settings.cpp) and everything made from it: the config file, the
// flags, --check-config's output, the example file systemd/ctauditd.toml and the operator's guide.
#include "daemon/settings.hpp"

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include "daemon/command_line.hpp"
#include "daemon/config_check.hpp"
#include "daemon/privileges.hpp"
#include "storage/schema.hpp"
#include "tests/support/file_text.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

using ctaudit::testing::readFile;

const std::filesystem::path kSourceDir = std::filesystem::path(CTAUDIT_TEST_DATA_DIR) / ".." / "..";
const std::filesystem::path kNoDefaultFile{"/nonexistent/ctaudit-test/ctauditd.toml"};

void writeFile(const std::filesystem::path& path, std::string_view text) { std::ofstream(path) << text; }

Result<DaemonCommand> parse(std::vector<std::string_view> args,
                            const std::filesystem::path& default_file = kNoDefaultFile) {
  return parseDaemonCommandLine(args, default_file);
}

const CheckConfigCommand& checkOf(const Result<DaemonCommand>& command) {
  return std::get<CheckConfigCommand>(*command);
}

DaemonConfig configOf(const Result<DaemonCommand>& command) { return std::get<RunCommand>(*command).config; }

// Every key's value as TOML, without the origins: what two configurations are compared by.
std::map<std::string, std::string> valuesOf(const DaemonConfig& config) {
  std::map<std::string, std::string> values;
  for (const Setting& setting : settings()) {
    values[std::string(setting.key)] = tomlValue(setting, config);
  }
  return values;
}

std::set<std::string> tableKeys() {
  std::set<std::string> keys;
  for (const Setting& setting : settings()) {
    keys.emplace(setting.key);
  }
  return keys;
}

// Parses a config file and returns the error detail (empty if it was accepted).
std::string errorFor(const testing::TempDir& dir, std::string_view text) {
  const auto path = dir / "ctauditd.toml";
  writeFile(path, text);
  const std::string file = path.string();
  const auto command = parse({"--config", file});
  if (command) {
    return "";
  }
  EXPECT_EQ(command.error().code, Errc::Config);
  return command.error().detail;
}

TEST(SettingsTest, KeysAreUniqueAndSpeltLikeFlags) {
  std::set<std::string_view> seen;
  for (const Setting& setting : settings()) {
    EXPECT_TRUE(seen.insert(setting.key).second) << setting.key;
    EXPECT_TRUE(std::regex_match(std::string(setting.key), std::regex("[a-z][a-z0-9-]*"))) << setting.key;
    EXPECT_FALSE(setting.key.starts_with("no-")) << "--no-KEY is the negation of a boolean";
    EXPECT_EQ(setting.value_name.empty(), setting.kind == ValueKind::Boolean) << setting.key;
    EXPECT_FALSE(setting.help.empty()) << setting.key;
  }
}

TEST(SettingsTest, EveryKeyHasAFlagThatSetsIt) {
  const DaemonConfig defaults;
  for (std::size_t i = 0; i < settings().size(); ++i) {
    const Setting& setting = settings()[i];
    const std::string flag = "--" + std::string(setting.key);
    std::vector<std::vector<std::string>> spellings;
    if (setting.kind == ValueKind::Boolean) {
      spellings = {{flag}, {"--no-" + std::string(setting.key)}};
    } else {
      const std::string value = setting.get(defaults);
      spellings = {{flag, value}, {flag + "=" + value}};
    }
    for (const auto& spelling : spellings) {
      std::vector<std::string_view> args(spelling.begin(), spelling.end());
      args.emplace_back("--check-config");
      const auto command = parse(args);
      ASSERT_TRUE(command) << spelling[0] << ": " << command.error().detail;
      EXPECT_EQ(checkOf(command).effective.origins[i], "command line") << spelling[0];
    }
  }
}

TEST(SettingsTest, EveryFlagInTheHelpIsAKeyOrOneOfTheFour) {
  const std::string help = daemonUsage(kNoDefaultFile);
  const std::set<std::string> others{"config", "check-config", "help", "version"};
  std::set<std::string> flags_shown;
  const std::regex option_line(R"(^  --([a-z0-9-]+)(, --no-([a-z0-9-]+))?)");
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (!std::regex_search(line, match, option_line)) {
      continue;
    }
    const std::string name = match[1];
    flags_shown.insert(name);
    if (match[3].matched) {
      EXPECT_EQ(match[3], name) << line;
    }
    EXPECT_TRUE(tableKeys().contains(name) || others.contains(name)) << "--" << name << " has no config key";
  }
  for (const std::string& key : tableKeys()) {
    EXPECT_TRUE(flags_shown.contains(key)) << "--" << key << " is missing from --help";
  }
  for (const std::string& other : others) {
    EXPECT_TRUE(flags_shown.contains(other)) << other;
  }
}

TEST(SettingsTest, DefaultConfigFileIsReadOnlyWhenItExists) {
  testing::TempDir dir;
  const auto file = dir / "ctauditd.toml";
  const auto missing = parse({"--check-config"}, file);
  ASSERT_TRUE(missing) << missing.error().detail;
  EXPECT_FALSE(checkOf(missing).config_file);

  writeFile(file, "db = \"/srv/a.db\"\n");
  const auto found = parse({"--check-config"}, file);
  ASSERT_TRUE(found) << found.error().detail;
  EXPECT_EQ(checkOf(found).config_file, file);
  EXPECT_EQ(checkOf(found).effective.config.db_path, "/srv/a.db");
  EXPECT_EQ(checkOf(found).effective.origins[0], file.string() + ":1");

  const auto none = parse({"--config", "none"}, file);
  ASSERT_TRUE(none);
  EXPECT_EQ(std::get<RunCommand>(*none).config.db_path, "/var/lib/ctaudit/flows.db");

  writeFile(file, "db = \n");
  EXPECT_FALSE(parse({}, file)) << "a broken default file is an error, not ignored";
  EXPECT_TRUE(parse({"--config", "none"}, file));
  EXPECT_TRUE(std::holds_alternative<HelpCommand>(*parse({"--help"}, file))) << "help works with a broken file";
}

TEST(SettingsTest, NamedConfigFileMustExist) {
  testing::TempDir dir;
  const std::string missing = (dir / "missing.toml").string();
  const auto command = parse({"--config", missing});
  ASSERT_FALSE(command);
  EXPECT_EQ(command.error().code, Errc::Config);
  EXPECT_NE(command.error().detail.find("cannot read config file " + missing), std::string::npos);
  EXPECT_NE(command.error().detail.find("--config none"), std::string::npos) << "says what to do";
  EXPECT_FALSE(parse({"--config", dir.path().string()})) << "a directory";
  EXPECT_FALSE(parse({"--config", "none", "--config", "none"})) << "given twice";
  EXPECT_FALSE(parse({"--config"}));
}

TEST(SettingsTest, AFlagGivenTwiceIsRefused) {
  const auto twice = parse({"--db", "/srv/a.db", "--flush-interval", "2s", "--db=/srv/b.db"});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::Usage);
  EXPECT_NE(twice.error().detail.find("--db given twice; give it once"), std::string::npos) << twice.error().detail;
  const auto boolean = parse({"--reliable", "--no-reliable"});
  ASSERT_FALSE(boolean);
  EXPECT_NE(boolean.error().detail.find("--reliable/--no-reliable given twice"), std::string::npos)
      << boolean.error().detail;
  EXPECT_TRUE(parse({"--db", "/srv/a.db", "--jsonl", "none"})) << "two different flags";
}

TEST(SettingsTest, FlagsOverrideTheFileWhateverTheirOrder) {
  testing::TempDir dir;
  const auto file = dir / "ctauditd.toml";
  writeFile(file, "reliable = true\nsysctl = false\njsonl-updates = true\nevents = [\"new\"]\ndb = \"/srv/a.db\"\n");
  const std::string name = file.string();
  const auto command = parse({"--no-reliable", "--events=destroy", "--config", name, "--sysctl", "--db", "/srv/b.db"});
  ASSERT_TRUE(command) << command.error().detail;
  const DaemonConfig& config = std::get<RunCommand>(*command).config;
  EXPECT_FALSE(config.reliable);
  EXPECT_TRUE(config.apply_sysctls);
  EXPECT_TRUE(config.jsonl_updates) << "from the file";
  EXPECT_EQ(config.events, (EventMask{false, false, true}));
  EXPECT_EQ(config.db_path, "/srv/b.db");
}

TEST(SettingsTest, EveryKeyCanBeOverriddenByItsFlag) {
  // The example with every line uncommented sets every key in the file; a flag for each wins.
  testing::TempDir dir;
  const auto file = dir / "all.toml";
  writeFile(file, std::regex_replace(renderExampleConfig(), std::regex("^#([a-z])", std::regex::multiline), "$1"));
  std::vector<std::string> args{"--check-config", "--config", file.string()};
  const DaemonConfig defaults;
  for (const Setting& setting : settings()) {
    args.push_back("--" + std::string(setting.key));
    if (setting.kind != ValueKind::Boolean) {
      args.push_back(setting.get(defaults));
    }
  }
  const auto command = parse(std::vector<std::string_view>(args.begin(), args.end()));
  ASSERT_TRUE(command) << command.error().detail;
  for (std::size_t i = 0; i < settings().size(); ++i) {
    EXPECT_EQ(checkOf(command).effective.origins[i], "command line") << settings()[i].key;
  }
}

TEST(SettingsTest, EachFileErrorNamesLineAndColumnAndWhatToDo) {
  testing::TempDir dir;
  const std::string file = (dir / "ctauditd.toml").string();
  struct Case {
    std::string text;
    std::string position;  // LINE:COL
    std::string says;
  };
  const std::vector<Case> cases{
      {"db = \"/srv/a.db\"\n\ncolour = \"blue\"\n", "3:1", "unknown key 'colour'; the keys are"},
      {"# comment\nflush-interval = 5\n", "2:18", "must be a string in double quotes: flush-interval = \"1s\""},
      {"reliable = \"yes\"\n", "1:12", "must be true or false, without quotes: reliable = false"},
      {"max-batch-rows = \"100\"\n", "1:18", "must be a whole number"},
      {"events = \"new\"\n", "1:10", "must be a non-empty array of strings"},
      {"events = []\n", "1:10", "must be a non-empty array of strings"},
      {"events = [\"new\", 3]\n", "1:10", "must be a non-empty array of strings"},
      {"events = [\"new\", \"bogus\"]\n", "1:10", "events: unknown event 'bogus'"},
      {"\n\nqueue-max = \"512K\"\n", "3:13", "queue-max: '512K' is too small; give at least 1M"},
      {"flush-interval = \"1ms\"\n", "1:18", "flush-interval: '1ms' is out of range; give 10ms to 10m"},
      {"flush-interval = \"1h\"\n", "1:18", "flush-interval: '1h' is out of range; give 10ms to 10m"},
      {"sweep-interval = \"500ms\"\n", "1:18", "sweep-interval: '500ms' is out of range; give 1s to 1d"},
      {"sweep-interval = \"2d\"\n", "1:18", "sweep-interval: '2d' is out of range; give 1s to 1d"},
      {"log-level = \"loud\"\n", "1:13", "log-level: bad log level 'loud'"},
      {"jsonl = \"\"\n", "1:9", "jsonl: empty path"},
      {"db = \"/srv/a\\u0000x.db\"\n", "1:6", "db: the path contains a NUL character"},
      {"jsonl = \"/srv/a\\u0000y.jsonl\"\n", "1:9", "jsonl: the path contains a NUL character"},
      {"db = \n", "1:6", "fix the TOML syntax"},
      {"db = '/a'\ndb = '/b'\n", "2:6", "fix the TOML syntax"},
      {"db = \"/a.db\"\n[jsonl]\nrotate = 1\n", "2:1", "'jsonl' is a table"},
      {"stats.file = \"x\"\n", "1:1", "'stats' is a table"},
      {"[[db]]\n", "1:1", "'db' must be a string"},
      {"db = [\"/a.db\"]\n", "1:6", "'db' must be a string"},
      {"max-batch-rows = 8192.0\n", "1:18", "must be a whole number"},
      {"max-batch-rows = -5\n", "1:18", "max-batch-rows: bad count '-5'"},
  };
  for (const Case& c : cases) {
    const std::string detail = errorFor(dir, c.text);
    EXPECT_TRUE(detail.starts_with(file + ":" + c.position + ": ")) << c.text << "-> " << detail;
    EXPECT_NE(detail.find(c.says), std::string::npos) << c.text << "-> " << detail;
  }
}

TEST(SettingsTest, ABadFileChangesNothingAndABadFlagIsAUsageError) {
  testing::TempDir dir;
  EXPECT_EQ(errorFor(dir, "db = \"/srv/a.db\"\nreliable = true\n"), "");
  const auto flag = parse({"--queue-max", "512K"});
  ASSERT_FALSE(flag);
  EXPECT_EQ(flag.error().code, Errc::Usage);
  EXPECT_EQ(flag.error().detail, "--queue-max: '512K' is too small; give at least 1M");
  EXPECT_FALSE(parse({"--reliable=true"}));
  EXPECT_FALSE(parse({"--no-db"}));
  EXPECT_FALSE(parse({"--no-reliable=1"}));
  EXPECT_FALSE(parse({"--check-config=yes"}));
}

TEST(SettingsTest, CheckConfigSaysWhereEachValueCameFrom) {
  testing::TempDir dir;
  const auto file = dir / "ctauditd.toml";
  writeFile(file, "# site settings\n\nqueue-max = \"2G\"\nevents = [\"new\", \"destroy\"]\n");
  const std::string name = file.string();
  const auto command = parse({"--check-config", "--config", name, "--reliable"});
  ASSERT_TRUE(command) << command.error().detail;
  const std::string text = renderEffectiveConfig(checkOf(command).effective, "test");
  EXPECT_NE(text.find("\nqueue-max = \"2G\"  # " + name + ":3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nevents = [\"new\", \"destroy\"]  # " + name + ":4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nreliable = true  # command line\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nflush-interval = \"1s\"  # default\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nstats-file = \"/var/lib/ctaudit/ctauditd.prom\"  # default\n"), std::string::npos) << text;
}

TEST(SettingsTest, CheckConfigOutputIsAConfigFileThatGivesTheSameConfig) {
  testing::TempDir dir;
  const auto file = dir / "in.toml";
  writeFile(file, "db = \"/srv/odd \\\"name\\\"\\\\ \\u00e9.db\"\nflush-interval = \"1m30s\"\nlog-level = \"warning\"\n"
                  "receive-buffer = \"5000\"\njsonl = \"none\"\n");
  const std::string name = file.string();
  const auto first = parse({"--check-config", "--config", name, "--queue-max", "1G", "--no-sysctl", "--events",
                            "update,destroy", "--max-batch-rows", "77", "--stats-file", "/run/x.prom"});
  ASSERT_TRUE(first) << first.error().detail;
  const auto& effective = checkOf(first).effective;
  EXPECT_EQ(effective.config.db_path, "/srv/odd \"name\"\\ \u00e9.db");

  const auto out = dir / "out.toml";
  writeFile(out, renderEffectiveConfig(effective, "round trip"));
  const auto second = parse({"--check-config", "--config", out.string()});
  ASSERT_TRUE(second) << second.error().detail << "\n" << readFile(out);
  EXPECT_EQ(valuesOf(checkOf(second).effective.config), valuesOf(effective.config));
  for (const std::string& origin : checkOf(second).effective.origins) {
    EXPECT_TRUE(origin.starts_with(out.string() + ":")) << "every key is in the output: " << origin;
  }
  EXPECT_EQ(checkOf(second).effective.config.flush_interval, std::chrono::seconds{90});
  EXPECT_NE(readFile(out).find("flush-interval = \"90s\""), std::string::npos);
  EXPECT_EQ(checkOf(second).effective.config.receive_buffer_bytes, 5000U);
}

TEST(SettingsTest, TheDefaultsRoundTripToo) {
  testing::TempDir dir;
  const auto out = dir / "defaults.toml";
  const auto defaults = parse({"--check-config"});
  ASSERT_TRUE(defaults);
  writeFile(out, renderEffectiveConfig(checkOf(defaults).effective, "defaults"));
  const auto again = parse({"--config", out.string()});
  ASSERT_TRUE(again) << again.error().detail;
  EXPECT_EQ(valuesOf(std::get<RunCommand>(*again).config), valuesOf(DaemonConfig{}));
}

// systemd/ctauditd.toml is made from the table. When this fails after a setting was added or
// changed, check ctauditd.toml.expected in the test's working directory and copy it over.
TEST(ExampleConfigTest, IsGeneratedFromTheTable) {
  const std::string shipped = readFile(kSourceDir / "systemd" / "ctauditd.toml");
  const std::string expected = renderExampleConfig();
  if (shipped != expected) {
    writeFile("ctauditd.toml.expected", expected);
    ADD_FAILURE() << "systemd/ctauditd.toml differs from the settings table; if the table is right: cp "
                  << (std::filesystem::current_path() / "ctauditd.toml.expected").string() << " "
                  << (kSourceDir / "systemd" / "ctauditd.toml").lexically_normal().string();
  }
}

TEST(ExampleConfigTest, MentionsExactlyTheKeysOfTheTable) {
  const std::string example = readFile(kSourceDir / "systemd" / "ctauditd.toml");
  ASSERT_FALSE(example.empty());
  std::set<std::string> keys;
  const std::regex key_line("^#([a-z][a-z0-9-]*) = ", std::regex::multiline);
  for (auto it = std::sregex_iterator(example.begin(), example.end(), key_line); it != std::sregex_iterator(); ++it) {
    EXPECT_TRUE(keys.insert((*it)[1]).second) << "twice: " << (*it)[1];
  }
  EXPECT_EQ(keys, tableKeys());
}

TEST(ExampleConfigTest, ParsesAsIsAndUncommentedToTheDefaults) {
  testing::TempDir dir;
  const auto as_shipped = parse({"--check-config", "--config", (kSourceDir / "systemd" / "ctauditd.toml").string()});
  ASSERT_TRUE(as_shipped) << as_shipped.error().detail;
  for (const std::string& origin : checkOf(as_shipped).effective.origins) {
    EXPECT_EQ(origin, "default") << "everything is commented out";
  }
  const auto uncommented = dir / "uncommented.toml";
  writeFile(uncommented, std::regex_replace(readFile(kSourceDir / "systemd" / "ctauditd.toml"),
                                            std::regex("^#([a-z])", std::regex::multiline), "$1"));
  const auto parsed = parse({"--check-config", "--config", uncommented.string()});
  ASSERT_TRUE(parsed) << parsed.error().detail;
  EXPECT_EQ(valuesOf(checkOf(parsed).effective.config), valuesOf(DaemonConfig{}));
  for (const std::string& origin : checkOf(parsed).effective.origins) {
    EXPECT_TRUE(origin.starts_with(uncommented.string() + ":")) << origin;
  }
}

TEST(ExampleConfigTest, TheOperatorsGuideListsEveryKey) {
  const std::string guide = readFile(kSourceDir / "docs" / "operations.md");
  ASSERT_FALSE(guide.empty());
  for (const std::string& key : tableKeys()) {
    EXPECT_NE(guide.find("| `" + key + "`"), std::string::npos)
        << key << " is not in the key table of docs/operations.md";
  }
}

TEST(ConfigCheckTest, PathsThatWillWorkRaiseNothing) {
  testing::TempDir dir;
  DaemonConfig config;
  config.db_path = dir / "flows.db";
  config.jsonl_path = "-";
  config.stats_file = dir / "ctauditd.prom";
  EXPECT_TRUE(checkConfigPaths(config).empty());
  config.jsonl_path = std::nullopt;
  config.stats_file = std::nullopt;
  EXPECT_TRUE(checkConfigPaths(config).empty());
}

// What a start refuses (outputPathConflict), the check says first.
TEST(ConfigCheckTest, TwoOutputsOnOneFileAreAnError) {
  testing::TempDir dir;
  DaemonConfig config;
  config.db_path = dir / "flows.db";
  config.jsonl_path = std::nullopt;
  config.stats_file = config.db_path;
  const auto problems = checkConfigPaths(config);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Error);
  EXPECT_NE(problems[0].message.find("name the same file"), std::string::npos) << problems[0].message;
}

TEST(ConfigCheckTest, MissingDirectoriesAreWarningsAndImpossiblePathsErrors) {
  testing::TempDir dir;
  writeFile(dir / "plain", "x");
  DaemonConfig config;
  config.db_path = dir / "state" / "flows.db";
  config.jsonl_path = dir / "log" / "flows.jsonl";
  config.stats_file = dir / "metrics" / "ctauditd.prom";
  const auto problems = checkConfigPaths(config);
  ASSERT_EQ(problems.size(), 3U);
  for (const ConfigProblem& problem : problems) {
    EXPECT_EQ(problem.severity, ConfigProblem::Severity::Warning) << problem.message;
  }
  EXPECT_NE(problems[0].message.find("will create it"), std::string::npos) << problems[0].message;
  EXPECT_NE(problems[1].message.find("will create it"), std::string::npos) << problems[1].message;
  EXPECT_NE(problems[2].message.find("does not create it"), std::string::npos) << problems[2].message;

  config.db_path = dir / "plain" / "flows.db";
  config.jsonl_path = dir.path();
  config.stats_file = std::nullopt;
  const auto errors = checkConfigPaths(config);
  ASSERT_EQ(errors.size(), 2U);
  EXPECT_EQ(errors[0].severity, ConfigProblem::Severity::Error);
  EXPECT_NE(errors[0].message.find("--jsonl " + dir.path().string() + " is a directory"), std::string::npos)
      << errors[0].message;
  EXPECT_EQ(errors[1].severity, ConfigProblem::Severity::Error);
  EXPECT_NE(errors[1].message.find("db = "), std::string::npos) << errors[1].message;
  EXPECT_NE(errors[1].message.find("is not a directory"), std::string::npos) << errors[1].message;
}

// Makes an SQLite file at `path` and runs `sql` in it.
void makeSqliteFile(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  ASSERT_EQ(rc, SQLITE_OK) << sql;
}

// --check-config exits 0 only for what a start accepts: a database file a start would refuse (not
// SQLite, another application's, a newer schema) and a user it cannot switch to are errors.
TEST(ConfigCheckTest, ADatabaseFileOrUserAStartWouldRefuseIsAnError) {
  testing::TempDir dir;
  DaemonConfig config;
  config.jsonl_path = std::nullopt;
  config.stats_file = std::nullopt;
  const auto problemsFor = [&config](const std::filesystem::path& db) {
    config.db_path = db;
    return checkConfigPaths(config);
  };

  writeFile(dir / "text.db", "notes, not a database; long enough to fill the hundred bytes of a header, and then some");
  auto problems = problemsFor(dir / "text.db");
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Error);
  EXPECT_NE(problems[0].message.find("not a SQLite database"), std::string::npos) << problems[0].message;

  makeSqliteFile(dir / "other.db", "CREATE TABLE t (x)");
  problems = problemsFor(dir / "other.db");
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Error);
  EXPECT_NE(problems[0].message.find("another application"), std::string::npos) << problems[0].message;

  makeSqliteFile(dir / "newer.db", "PRAGMA application_id = " + std::to_string(storage::kApplicationId) +
                                       "; PRAGMA user_version = " + std::to_string(storage::kSchemaVersion + 1));
  problems = problemsFor(dir / "newer.db");
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Error);
  EXPECT_NE(problems[0].message.find("newer ctaudit"), std::string::npos) << problems[0].message;

  makeSqliteFile(dir / "older.db", "PRAGMA application_id = " + std::to_string(storage::kApplicationId) +
                                       "; PRAGMA user_version = " + std::to_string(storage::kSchemaVersion - 1));
  problems = problemsFor(dir / "older.db");
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Warning);
  EXPECT_NE(problems[0].message.find("upgrades it"), std::string::npos) << problems[0].message;

  // What a start fills with its schema.
  writeFile(dir / "empty.db", "");
  EXPECT_TRUE(problemsFor(dir / "empty.db").empty());
  makeSqliteFile(dir / "blank.db", "PRAGMA user_version = 0");
  EXPECT_TRUE(problemsFor(dir / "blank.db").empty());
  makeSqliteFile(dir / "dropped.db", "CREATE TABLE t (x); DROP TABLE t");  // the schema cookie is 2, no table
  EXPECT_TRUE(problemsFor(dir / "dropped.db").empty()) << problemsFor(dir / "dropped.db")[0].message;

  config.user = "no-such-user-ctaudit-test";
  problems = problemsFor(dir / "flows.db");
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Error);
  EXPECT_NE(problems[0].message.find("--user no-such-user-ctaudit-test: no such user"), std::string::npos)
      << problems[0].message;
  // An unprivileged account that exists (Debian always has 'nobody'): checked by root, it must be
  // able to create files in the outputs' directories, as the start requires after the switch (an
  // exploratory run's check passed where the start then failed); checked by anyone else, a warning
  // that a start must be root to switch to it.
  config.user = "nobody";
  problems = problemsFor(dir / "flows.db");
  if (::geteuid() == 0) {
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Error);
    EXPECT_NE(problems[0].message.find("user nobody cannot create files in " + dir.path().string()),
              std::string::npos)
        << problems[0].message;
    problems = problemsFor(dir / "missing" / "flows.db");
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_NE(problems[0].message.find("does not exist, and user nobody must be able to create files in it"),
              std::string::npos)
        << problems[0].message;
    const auto account = lookupServiceAccount("nobody");
    ASSERT_TRUE(account);
    ASSERT_EQ(::chown(dir.path().c_str(), account->uid, account->gid), 0);
    problems = problemsFor(dir / "flows.db");
    EXPECT_TRUE(problems.empty()) << problems[0].message;
  } else {
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_EQ(problems[0].severity, ConfigProblem::Severity::Warning) << problems[0].message;
  }
}

TEST(ConfigCheckTest, ReportPrintsTheConfigAndFailsOnlyOnErrors) {
  testing::TempDir dir;
  writeFile(dir / "plain", "x");
  const std::string db = (dir / "flows.db").string();
  const auto good = parse({"--check-config", "--db", db, "--jsonl", "-"});
  ASSERT_TRUE(good) << good.error().detail;
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_TRUE(reportCheckConfig(checkOf(good), out, err));
  EXPECT_NE(out.str().find("db = \"" + db + "\"  # command line\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("No config file read"), std::string::npos) << out.str();
  EXPECT_EQ(err.str(), "");

  const std::string jsonl = (dir / "new" / "flows.jsonl").string();
  const auto warned = parse({"--check-config", "--db", db, "--jsonl", jsonl});
  ASSERT_TRUE(warned);
  err.str("");
  EXPECT_TRUE(reportCheckConfig(checkOf(warned), out, err));
  EXPECT_TRUE(err.str().starts_with("ctauditd: warning: jsonl = ")) << err.str();

  const std::string bad_db = (dir / "plain" / "flows.db").string();
  const auto bad = parse({"--check-config", "--db", bad_db, "--jsonl", "-"});
  ASSERT_TRUE(bad);
  err.str("");
  EXPECT_FALSE(reportCheckConfig(checkOf(bad), out, err));
  EXPECT_TRUE(err.str().starts_with("ctauditd: error: db = ")) << err.str();
  EXPECT_FALSE(std::filesystem::exists(dir / "new")) << "the check creates nothing";
}

// Found by running the daemon so: --events new,destroy --jsonl-updates wrote no UPDATE and said
// nothing of it.
// Found by an exploratory run: --queue-max 100G was taken on a machine of 23 GiB, where a long
// overload would have the daemon killed with everything it queued.
TEST(ConfigCheckTest, AQueueWhoseWorstCaseIsMoreThanTheMemoryIsAWarning) {
  DaemonConfig config;
  config.queue_max_bytes = std::size_t{1} << 30U;  // 1 GiB: about 2 GiB at worst
  constexpr std::uint64_t kGiB = std::uint64_t{1} << 30U;
  EXPECT_FALSE(queueLargerThanMemory(config, 2 * kGiB));
  EXPECT_FALSE(queueLargerThanMemory(config, 0)) << "memory not known: nothing to say";
  const auto warning = queueLargerThanMemory(config, 2 * kGiB - 1);
  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("queue-max of 1024 MiB"), std::string::npos) << *warning;
  EXPECT_NE(warning->find("give less than half of the memory"), std::string::npos) << *warning;
  EXPECT_GT(physicalMemoryBytes(), 0U);
}

TEST(ConfigCheckTest, SettingsThatDoNothingAreWarnings) {
  DaemonConfig config;
  EXPECT_TRUE(settingsWithoutEffect(config).empty());
  config.jsonl_updates = true;
  EXPECT_TRUE(settingsWithoutEffect(config).empty());
  config.events = configOf(parse({"--events", "new,destroy"})).events;
  ASSERT_EQ(settingsWithoutEffect(config).size(), 1U);
  EXPECT_EQ(settingsWithoutEffect(config)[0],
            "jsonl-updates = true does nothing: the events subscribed to (new,destroy) include no UPDATE; add "
            "\"update\" to events, or leave jsonl-updates off");
  config.jsonl_path.reset();
  ASSERT_EQ(settingsWithoutEffect(config).size(), 1U);
  EXPECT_NE(settingsWithoutEffect(config)[0].find("does nothing with jsonl = \"none\""), std::string::npos);

  config = configOf(parse({"--jsonl", "-", "--jsonl-rotate", "1h"}));
  ASSERT_EQ(settingsWithoutEffect(config).size(), 1U);
  EXPECT_NE(settingsWithoutEffect(config)[0].find("do nothing with jsonl = \"-\""), std::string::npos);
  config = configOf(parse({"--jsonl", "-"}));  // the defaults are no choice to warn of
  EXPECT_TRUE(settingsWithoutEffect(config).empty());
  config = configOf(parse({"--reliable", "--sweep-interval", "1m"}));
  ASSERT_EQ(settingsWithoutEffect(config).size(), 1U);
  EXPECT_NE(settingsWithoutEffect(config)[0].find("sweep-interval does nothing with reliable = true"),
            std::string::npos);
  EXPECT_TRUE(settingsWithoutEffect(configOf(parse({"--reliable"}))).empty());

  testing::TempDir dir;
  const auto check = parse({"--check-config", "--db", (dir / "flows.db").string(), "--jsonl", "none",
                            "--jsonl-updates", "--jsonl-keep", "3"});
  ASSERT_TRUE(check) << check.error().detail;
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_TRUE(reportCheckConfig(checkOf(check), out, err)) << "warnings only";
  EXPECT_NE(err.str().find("ctauditd: warning: jsonl-updates = true does nothing"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("ctauditd: warning: jsonl-rotate, jsonl-keep"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace ctaudit::daemon
