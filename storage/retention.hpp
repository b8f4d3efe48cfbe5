// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/retention_horizon.hpp"

struct sqlite3;

namespace ctaudit::storage {

// What one FlowExpiry::step did.
struct ExpiryStep {
  Timestamp horizon{};            // every flow that ended before it may now be deleted
  std::size_t rows_examined{0};   // flows rows (or remembered ids) looked at
  std::size_t flows_deleted{0};
  std::size_t gaps_deleted{0};
  std::size_t runs_deleted{0};
  // Nothing is left to expire for this horizon: the walk reached the first flow that started
  // after it (or the end of the table) and no pass over the remembered rows is under way. The
  // caller may wait before the next step; until then the horizon moves on only in time.
  bool caught_up{false};
};

// Deletes what retention says is too old (docs/operations.md, "Retention"): flows that ended before
// the horizon (now - period), and gaps and runs that ended before it; and records the horizon in
// `meta` so that a query about earlier time is told it is out of range. Works in steps of at most
// `max_rows` flows rows, each its own short transaction, so that the daemon interleaves them with
// its batch commits and ingest never waits for more than one step.
//
// How the rows are found without an index on end_ns: rows are appended in about the order flows
// are first seen, so ids grow with the time a row was inserted, and a row's end is never (more
// than the event queueing delay) before its insertion. The walk therefore goes up the rowid from a
// persisted cursor (meta `retention_cursor_id`) and stops at the first row that started at or
// after the horizon (the frontier): every row after it was inserted after the horizon and cannot
// have ended long before it. Below the cursor, rows that were still open or ended after the
// horizon of their pass (flows that span the horizon; about as many as conntrack held at that
// instant, plus rows a clock running ahead dated into the future) are remembered by id in the
// table `retention_pending` and looked at again once the horizon has moved on by
// kPendingPassInterval. A row the frontier rule passes over too early (its end a queueing delay
// before its insertion) is caught by a later pass: the horizon only promises "may have been
// deleted".
//
// The SQL touches only flows.id, flows.start_ms and flows.dur_ms, the spans, gaps and runs tables, meta
// and its own retention_pending table. Deleting frees pages into SQLite's freelist, which the
// inserts that follow reuse, so a database under steady ingest and expiry stops growing.
//
// Borrows the connection (which must outlive it) and uses it only inside step(); the owner must
// not have a transaction open then. Not thread-safe: call from the thread that owns the
// connection.
class FlowExpiry {
public:
  // How far the horizon moves between two passes over the remembered rows.
  static constexpr std::chrono::minutes kPendingPassInterval{1};

  // Prepares the statements, creates retention_pending if missing and reads the cursor. `period`
  // must be positive. Errors: Errc::Storage / Errc::Io when the database refuses.
  [[nodiscard]] static Result<std::unique_ptr<FlowExpiry>> open(sqlite3* db, std::chrono::nanoseconds period);

  FlowExpiry(const FlowExpiry&) = delete;
  FlowExpiry& operator=(const FlowExpiry&) = delete;
  FlowExpiry(FlowExpiry&&) = delete;
  FlowExpiry& operator=(FlowExpiry&&) = delete;
  ~FlowExpiry();

  // One bounded step towards the horizon `now - period` (never behind the stored horizon, so a
  // clock stepped back moves nothing backwards): at most `max_rows` flows rows looked at, plus at
  // most as many gaps and runs rows, in one BEGIN IMMEDIATE transaction that also stores the
  // horizon, the period and the cursor. Runs with synchronous=NORMAL: a crash may undo the last
  // steps (they are done again), never corrupt; the next FULL commit of a batch makes them durable.
  // Errors: the database is busy (Errc::Storage, retry later) or refuses (Errc::Storage, Errc::Io);
  // nothing of the step is kept then.
  [[nodiscard]] Result<ExpiryStep> step(Timestamp now, std::size_t max_rows);

  // The first id the walk has not looked at yet (as stored after the last step).
  [[nodiscard]] std::int64_t cursor() const noexcept;

private:
  struct Impl;
  explicit FlowExpiry(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// The horizon and period as FlowExpiry recorded them in `meta`; nullopt when retention never ran on
// this database. Reads only `meta`, so it works on a read-only connection. Errors: Errc::Storage
// for a value that is not an integer, naming the key; Errc::Storage / Errc::Io when meta cannot be
// read.
[[nodiscard]] Result<std::optional<RetentionHorizon>> readRetentionHorizon(sqlite3* db);

}  // namespace ctaudit::storage
