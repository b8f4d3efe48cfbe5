// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/metrics.hpp"

#include <algorithm>
#include <array>

#include "flow/gap_record.hpp"

namespace ctaudit::daemon {
namespace {

// Builds the text: one HELP and TYPE line per family, then its samples.
class Exposition {
public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    text_ += help;
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
  }
  // `labels` is already formatted: `sink="sqlite"` (label values here never need escaping:
  // they are fixed sink labels and gap reason names).
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    text_ += name;
    if (!labels.empty()) {
      text_ += '{';
      text_ += labels;
      text_ += '}';
    }
    text_ += ' ';
    text_ += std::to_string(value);
    text_ += '\n';
  }
  void single(std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  [[nodiscard]] std::string take() { return std::move(text_); }

private:
  std::string text_;
};

std::string sinkLabel(const std::string& sink) { return "sink=\"" + sink + "\""; }

}  // namespace

std::string formatMetrics(const MetricsSnapshot& s) {
  Exposition out;
  const auto seconds = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(s.start_time.time_since_epoch()).count());
  out.single("ctauditd_start_time_seconds", "gauge", "When this ctauditd started, in Unix seconds.", seconds);
  out.single("ctauditd_reliable_delivery", "gauge",
             "1 when the event socket runs with NETLINK_BROADCAST_ERROR and NETLINK_NO_ENOBUFS (--reliable).",
             s.reliable ? 1 : 0);

  const ReaderStats& r = s.reader;
  out.single("ctauditd_netlink_datagrams_total", "counter", "Datagrams read from the conntrack event socket.",
             r.datagrams);
  out.single("ctauditd_netlink_messages_total", "counter", "ctnetlink messages received (events and dump rows).",
             r.messages);
  out.single("ctauditd_netlink_messages_decoded_total", "counter", "ctnetlink messages decoded into flow records.",
             r.decoded);
  out.single("ctauditd_netlink_messages_malformed_total", "counter",
             "ctnetlink messages the decoder refused, and truncated datagrams.", r.malformed);
  out.single("ctauditd_netlink_datagrams_from_user_space_total", "counter",
             "Datagrams to the conntrack event groups that a process sent, not the kernel: ignored.",
             r.from_user_space);
  out.single("ctauditd_netlink_overruns_total", "counter",
             "ENOBUFS errors on the event socket: the kernel dropped events.", r.overruns);
  out.single("ctauditd_netlink_kernel_drops_total", "counter",
             "Events the kernel could not queue for the event socket (SO_MEMINFO drops).", r.kernel_drops);
  out.single("ctauditd_dump_entries_total", "counter", "Rows read from conntrack table dumps.", r.dump_entries);
  out.single("ctauditd_resyncs_total", "counter", "Table dumps made to repair lost events (not the one at start).",
             r.resyncs);

  out.single("ctauditd_queue_records", "gauge", "Records between the reader thread and the sinks' batcher.",
             s.queue_records);
  out.single("ctauditd_queue_records_max", "gauge", "The most records that ever waited in the queue.",
             s.queue_records_max);
  out.single("ctauditd_queue_bytes", "gauge", "Packed bytes of the records waiting in the queue.", s.queue_bytes);
  out.single("ctauditd_queue_capacity_bytes", "gauge",
             "Packed bytes of records the queue may hold (from --queue-max: all but 5 MiB, 3/8 below 10M).",
             s.queue_capacity_bytes);

  if (s.memory) {
    out.single("ctauditd_resident_memory_bytes", "gauge", "The daemon's resident memory (VmRSS).",
               s.memory->resident_bytes);
    out.single("ctauditd_resident_memory_peak_bytes", "gauge",
               "The most resident memory the daemon ever had (VmHWM).", s.memory->peak_resident_bytes);
  }

  out.single("ctauditd_pipeline_records_total", "counter", "Flow records the pipeline took from the queue.",
             s.pipeline.records);
  out.single("ctauditd_open_flows", "gauge", "Flows open in the daemon's flow table.", s.open_flows);
  out.single("ctauditd_flows_recovered_total", "counter",
             "Flows first seen in a resync dump, not through their NEW event (lost, or still queued behind the dump).",
             s.pipeline.recovered);
  out.single("ctauditd_flows_closed_unseen_total", "counter",
             "Flows closed with a bound end time: their DESTROY event was lost, or they had none (a sweep).",
             s.pipeline.closed_unseen);

  out.family("ctauditd_sink_records_written_total", "counter", "Records each sink accepted.");
  for (const auto& sink : s.sinks) {
    out.sample("ctauditd_sink_records_written_total", sinkLabel(sink.label), sink.written);
  }
  out.family("ctauditd_sink_records_pending", "gauge", "Records waiting for each sink.");
  for (const auto& sink : s.sinks) {
    out.sample("ctauditd_sink_records_pending", sinkLabel(sink.label), sink.pending);
  }
  out.family("ctauditd_sink_failing", "gauge", "1 while a sink refuses writes.");
  for (const auto& sink : s.sinks) {
    out.sample("ctauditd_sink_failing", sinkLabel(sink.label), sink.failing ? 1 : 0);
  }
  out.family("ctauditd_sink_gaps_written_total", "counter", "Gap records each sink accepted.");
  for (const auto& sink : s.sinks) {
    out.sample("ctauditd_sink_gaps_written_total", sinkLabel(sink.label), sink.gaps_written);
  }

  out.family("ctauditd_records_dropped_total", "counter",
             "Records lost on the way to the sinks, by reason (each loss is also a gap record).");
  out.sample("ctauditd_records_dropped_total", "reason=\"queue_overflow\"", r.queue_dropped);
  for (const auto& sink : s.sinks) {
    out.sample("ctauditd_records_dropped_total", "reason=\"sink_failure\"," + sinkLabel(sink.label), sink.dropped);
  }

  out.family("ctauditd_gaps_total", "counter", "Gap records raised, by reason.");
  constexpr std::array kReasons{GapReason::KernelOverrun, GapReason::QueueOverflow, GapReason::SinkFailure,
                                GapReason::DaemonDown, GapReason::MalformedEvent};
  for (const GapReason reason : kReasons) {
    std::uint64_t count = s.pipeline.gaps.at(static_cast<std::size_t>(reason));
    if (reason == GapReason::SinkFailure) {
      count += s.sink_failure_gaps;
    }
    out.sample("ctauditd_gaps_total", "reason=\"" + std::string(gapReasonName(reason)) + "\"", count);
  }
  if (s.retention) {
    const ExpiryRunner::Stats& e = *s.retention;
    out.single("ctauditd_retention_flows_expired_total", "counter", "Flows deleted by retention.", e.flows_deleted);
    out.single("ctauditd_retention_steps_total", "counter", "Retention steps run between batch commits.", e.steps);
    out.single("ctauditd_retention_step_failures_total", "counter",
               "Retention steps that failed (database busy or refusing); retried later.", e.failures);
    out.single("ctauditd_retention_longest_step_microseconds", "gauge", "The longest retention step since the start.",
               static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(e.longest_step).count()));
    if (e.horizon) {
      out.single("ctauditd_retention_horizon_seconds", "gauge",
                 "Flows that ended before this time (Unix seconds) may have been deleted.",
                 static_cast<std::uint64_t>(std::max<std::int64_t>(
                     0, std::chrono::duration_cast<std::chrono::seconds>(e.horizon->time_since_epoch()).count())));
    }
  }
  return out.take();
}

}  // namespace ctaudit::daemon
