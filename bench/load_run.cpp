// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/load_run.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <thread>

#include "bench/token_bucket.hpp"

namespace ctaudit::bench {
namespace {

// How often the loop looks for a stop signal and may print progress.
constexpr auto kPollInterval = std::chrono::milliseconds{10};

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

LoadRun::LoadRun(const LoadgenOptions& options, CtChannel& channel, StopSignal& stop)
    : options_(options),
      channel_(channel),
      stop_(stop),
      plan_(options.plan),
      batch_(options.batch),
      results_(options.batch),
      // Seeded from the first flow, so that a run ends its flows in the same order each time.
      live_(options.ends, plan_.natPorts(), 0x9e3779b97f4a7c15ULL ^ options.first_index),
      next_flow_(options.first_index) {
  ops_.reserve(options.batch);
}

std::size_t LoadRun::workLeft() const noexcept {
  if (creating_) {
    if (!options_.count) {
      return options_.batch;
    }
    const std::uint64_t creates = *options_.count - attempted_;
    // Each create may need a delete first (--live) or, at the end, a delete after.
    const std::uint64_t upper = options_.delete_flows ? 2 * creates + live_.size() : creates;
    return static_cast<std::size_t>(std::min<std::uint64_t>(upper, options_.batch));
  }
  if (options_.keep_at_exit) {
    return 0;
  }
  return std::min(live_.size(), options_.batch);
}

void LoadRun::fillBatch(std::size_t budget) {
  batch_.clear();
  ops_.clear();
  std::size_t creates_in_batch = 0;
  while (ops_.size() < budget) {
    const bool may_create = creating_ && (!options_.count || attempted_ < *options_.count);
    if (may_create) {
      const bool at_cap = options_.live != 0 && live_.size() + creates_in_batch >= options_.live;
      if (!at_cap) {
        if (options_.delete_flows) {
          if (const auto holder = live_.takeHolderOf(next_flow_)) {
            addDelete(*holder);  // it still holds the port this create would get
            ++totals_.forced_deletes;
            continue;
          }
        }
        const std::uint64_t flow = next_flow_++;
        ++attempted_;
        ++creates_in_batch;
        batch_.addCreate(plan_.at(flow), seq_ + static_cast<std::uint32_t>(ops_.size()), options_.create);
        ops_.push_back({OpKind::Create, flow});
        continue;
      }
      if (live_.empty()) {
        break;  // this batch's own creates fill the cap: send them first
      }
    } else if (creating_ || options_.keep_at_exit || live_.empty()) {
      break;
    }
    addDelete(live_.take());
  }
}

void LoadRun::addDelete(std::uint64_t flow) {
  batch_.addDelete(plan_.at(flow), seq_ + static_cast<std::uint32_t>(ops_.size()), options_.create.ack_every_message);
  ops_.push_back({OpKind::Delete, flow});
}

void LoadRun::account(std::span<const int> results) {
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    const int result = results[i];
    const bool create = op.kind == OpKind::Create;
    if (result == kAckOk) {
      if (create) {
        ++totals_.created;
        live_.add(op.flow);
      } else {
        ++totals_.deleted;
      }
      continue;
    }
    if (result == kAckMissing) {
      ++totals_.acks_missing;
      if (create) {
        live_.add(op.flow);  // perhaps alive: a later delete settles it (ENOENT if not)
      }
      continue;
    }
    ++totals_.errors_by_errno[result];
    ++(create ? totals_.create_errors : totals_.delete_errors);
  }
}

void LoadRun::reportProgress(Clock::time_point now, Clock::time_point start) {
  if (!options_.progress || now - last_progress_ < std::chrono::seconds{1}) {
    return;
  }
  const double interval = seconds(now - last_progress_);
  const std::uint64_t errors = totals_.create_errors + totals_.delete_errors;
  std::fprintf(stderr, "ct_loadgen: t=%.1fs created=%llu deleted=%llu errors=%llu live=%zu rate=%.0f/s\n",
               seconds(now - start), static_cast<unsigned long long>(totals_.created),
               static_cast<unsigned long long>(totals_.deleted), static_cast<unsigned long long>(errors), live_.size(),
               static_cast<double>(totals_.requests - progress_requests_) / interval);
  last_progress_ = now;
  progress_requests_ = totals_.requests;
}

Result<RunTotals> LoadRun::run() {
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      options_.duration ? start + std::chrono::duration_cast<Clock::duration>(*options_.duration)
                        : Clock::time_point::max();
  // Room for two batches or 50 ms of requests, whichever is more: the sleep overshoots, and on two
  // shared cores the generator is preempted for a time slice or two (several ms) while the daemon
  // and the kernel's writeback run. The tokens that accrue meanwhile are sent in a short burst
  // rather than lost, so the average holds the rate asked for.
  const auto capacity = std::max<std::size_t>(2 * options_.batch, static_cast<std::size_t>(options_.rate / 20.0));
  TokenBucket bucket(options_.rate, capacity, start);
  last_progress_ = start;
  Clock::time_point next_poll = start;
  for (;;) {
    Clock::time_point now = Clock::now();
    if (now >= next_poll) {
      const int stops = stop_.received();
      if (stops >= 2) {
        totals_.interrupted = true;
        break;
      }
      if (stops == 1 && creating_) {
        totals_.interrupted = true;
        creating_ = false;
      }
      reportProgress(now, start);
      next_poll = now + kPollInterval;
    }
    if (creating_ && ((options_.count && attempted_ >= *options_.count) || now >= deadline)) {
      creating_ = false;
    }
    if (!creating_ && totals_.create_phase == std::chrono::nanoseconds{0}) {
      totals_.create_phase = now - start;
      totals_.create_phase_requests = totals_.requests;
    }
    const std::size_t wanted = workLeft();
    if (wanted == 0) {
      break;
    }
    const Clock::time_point ready = bucket.readyAt(wanted, now);
    if (ready > now) {
      std::this_thread::sleep_until(std::min({ready, next_poll, creating_ ? deadline : ready}));
      continue;
    }
    fillBatch(std::min(wanted, bucket.available(now)));
    if (ops_.empty()) {
      continue;
    }
    const std::span<int> results(results_.data(), ops_.size());
    const auto sent = channel_.exchange(batch_.bytes(), seq_, options_.create.ack_every_message, results);
    if (!sent) {
      return Unexpected{sent.error()};
    }
    seq_ += static_cast<std::uint32_t>(ops_.size());
    bucket.take(ops_.size());
    totals_.requests += ops_.size();
    ++totals_.sends;
    account(results);
  }
  totals_.elapsed = Clock::now() - start;
  if (totals_.create_phase == std::chrono::nanoseconds{0}) {
    totals_.create_phase = totals_.elapsed;
    totals_.create_phase_requests = totals_.requests;
  }
  totals_.left_alive = live_.size();
  totals_.socket_overruns = channel_.overruns();
  return totals_;
}

}  // namespace ctaudit::bench
