// The span store: embedded, durable storage of spans with the indexes the
// Zipkin query API and Outrider's UI need.
//
// Data: a storage::log (append-only segments, checksummed records) under
// `<dir>/spans`; each record holds the spans of one trace from one ingest
// batch (format: span_store_format.h, docs/formats/span-store.md). Indexes
// live in memory. When a log segment is finished, what they need of it is
// written to `<dir>/index/<segment>.idx` (a few bytes per span); open() loads
// those files and decodes only the segments without a valid one (the active
// segment, a missing or damaged file):
//  - trace id -> record positions (a trace's spans arriving days apart are one
//    trace; lookup needs no time window),
//  - per trace: its timestamp (root span's start, else the earliest) and one
//    16-byte key per span (service, name, remote service, duration) for search,
//  - service names, span names and remote services per service,
//  - tag keys and values for autocomplete (bounded),
//  - trace id -> ids of other traces with a span linking into it (the UI's
//    "linked from"; a source trace's entry goes stale, and is skipped, when
//    retention drops it),
//  - per log segment: newest ingest time, byte size and the names and tag
//    values its spans use (retention prunes names no retained span uses).
// Names in the Zipkin-facing indexes are lower-cased, as Zipkin does.
//
// Retention drops whole segments: those whose newest record is older than
// max_age, and the oldest ones while the store is larger than max_bytes.
//
// Threading: append()/sync()/enforce_retention() are called by one writer
// thread (sync() may run while the same thread is not appending; group commit
// is the caller's: many appends, one sync). Queries may run on any thread at
// any time (a shared lock over the indexes; disk reads are serialised with
// appends by a mutex, as storage::log requires).
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "io/file_system.h"
#include "storage/log.h"
#include "tracing/detail/segment_index.h"
#include "tracing/span.h"

namespace outrider::tracing {

struct span_store_options {
  std::string dir;  // data directory (the log goes to dir + "/spans")
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  // Segments whose newest span was stored longer ago than this are dropped (0: keep).
  nanoseconds max_age = std::chrono::hours(24 * 7);
  // Oldest segments are dropped while the store is larger than this (0: no limit).
  std::uint64_t max_bytes = 0;
  // Tag keys indexed for /api/v2/autocompleteValues; empty: every key (bounded below).
  std::vector<std::string> autocomplete_keys;
  std::size_t max_autocomplete_keys = 500;
  std::size_t max_values_per_key = 500;
  std::size_t max_autocomplete_value_bytes = 256;
  // Written log bytes kept in the OS page cache behind the write position (older ones are
  // dropped once durable: storage::log_options::cached_tail_bytes; 0 leaves it to the OS).
  std::uint64_t cached_tail_bytes = std::uint64_t{32} << 20;
};

// A Zipkin v2 /api/v2/traces query. Names are compared lower-cased.
struct trace_query {
  std::string service_name;         // "" = any
  std::string remote_service_name;  // "" = any
  std::string span_name;            // "" = any
  // annotationQuery terms: key=value (tag equals) or key (tag key or annotation value).
  std::vector<std::pair<std::string, std::optional<std::string>>> annotation_query;
  std::optional<std::int64_t> min_duration_us;
  std::optional<std::int64_t> max_duration_us;
  std::int64_t end_ts_ms = 0;    // traces with timestamp <= end_ts
  std::int64_t lookback_ms = 0;  // ... and >= end_ts - lookback
  std::size_t limit = 10;
};

struct dependency_link {
  std::string parent;
  std::string child;
  std::uint64_t call_count = 0;
  std::uint64_t error_count = 0;
};

struct span_store_stats {
  std::uint64_t spans = 0;
  std::uint64_t traces = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes_on_disk = 0;
  std::uint64_t segments = 0;
  std::uint64_t index_bytes = 0;  // estimate of the in-memory indexes
  std::uint64_t strings = 0;      // interned names (service, span, remote) still in use
};

class span_store {
 public:
  // Opens (creating if needed) the store in opts.dir and rebuilds the indexes
  // from the log. Errors: as storage::log::open, data_corruption for a bad record.
  static result<std::unique_ptr<span_store>> open(io::file_system& fs, span_store_options opts);
  ~span_store();
  span_store(const span_store&) = delete;
  span_store& operator=(const span_store&) = delete;

  // Stores `spans` (buffered; durable after sync()) and indexes them. `now` is
  // the ingest time retention uses. Errors: as storage::log::append (nothing of
  // the failing record is indexed; earlier records of the call are).
  status append(std::span<const span> spans, wall_time now);
  // Makes everything appended so far durable.
  status sync();
  // Drops segments beyond the age and size limits and forgets their spans;
  // returns the number of segments dropped. Errors: as remove_segments_before.
  result<std::size_t> enforce_retention(wall_time now);

  // Every stored span of the trace, in storage order (empty if unknown).
  result<std::vector<span>> get_trace(const id128& trace_id) const;
  // Traces matching `q`, newest first, at most q.limit.
  result<std::vector<std::vector<span>>> find_traces(const trace_query& q) const;
  // Other stored traces with a span whose link points into `trace_id`.
  std::vector<id128> traces_linking_to(const id128& trace_id) const;
  std::vector<std::string> service_names() const;
  std::vector<std::string> span_names(std::string_view service) const;
  std::vector<std::string> remote_service_names(std::string_view service) const;
  std::vector<std::string> autocomplete_keys() const;
  std::vector<std::string> autocomplete_values(std::string_view key) const;
  // Service links from parent/child spans of traces in [end - lookback, end].
  result<std::vector<dependency_link>> dependencies(std::int64_t end_ts_ms,
                                                    std::int64_t lookback_ms) const;

  span_store_stats stats() const;

  // Zipkin's QueryRequest.test over one trace's spans (exposed for tests).
  static bool matches(const trace_query& q, const std::vector<span>& trace);

 private:
  struct span_key {
    std::uint32_t service;  // string ids (0 = none)
    std::uint32_t name;
    std::uint32_t remote;
    std::uint32_t duration_us;  // saturated
  };
  struct record_ref {
    storage::position pos;
    std::uint32_t keys;  // span keys this record added (a trace's keys are in record order)
  };
  struct trace_entry {
    id128 id;
    std::int64_t timestamp_us = 0;  // root's start, else earliest start
    bool has_root = false;
    std::vector<record_ref> records;
    std::vector<span_key> keys;
  };
  // Names and tag values are reference-counted by the segments holding a span
  // that uses them; a name leaves the lists when its last segment is dropped.
  struct service_entry {
    std::uint32_t segments = 0;
    std::map<std::uint32_t, std::uint32_t> span_names;       // name id -> segments
    std::map<std::uint32_t, std::uint32_t> remote_services;  // name id -> segments
  };
  static constexpr std::uint64_t no_segment = ~std::uint64_t{0};
  struct tag_value_entry {
    std::uint32_t segments = 0;
    std::uint64_t last_segment = no_segment;  // newest segment whose set holds it
  };
  using tag_value_map = std::map<std::string, tag_value_entry, std::less<>>;
  struct tag_key_entry {
    std::uint32_t segments = 0;
    std::uint64_t last_segment = no_segment;
    tag_value_map values;
    tag_value_map::value_type* last_value = nullptr;  // lookup cache: spans repeat values
  };
  using tag_map = std::map<std::string, tag_key_entry, std::less<>>;
  struct segment_entry {
    std::int64_t newest_ingest_ms = 0;
    std::uint64_t bytes = 0;
    std::uint64_t spans = 0;
    // What this segment's spans use (each counted once in the global lists).
    std::unordered_set<std::uint32_t> services;
    std::unordered_set<std::uint64_t> span_names;       // service << 32 | name
    std::unordered_set<std::uint64_t> remote_services;  // service << 32 | remote
    std::unordered_set<tag_map::value_type*> tag_keys;
    std::unordered_map<tag_value_map::value_type*, tag_map::value_type*> tag_values;  // -> key
  };

  span_store(io::file_system& fs, span_store_options opts);
  status rebuild();
  // Indexes one segment from its index file; false (and nothing indexed) when
  // the file is missing, damaged or does not match the log.
  bool load_index_file(std::uint64_t segment);
  void apply_index(const detail::segment_index& index);
  // Indexes one segment by decoding its records (and journals it).
  status decode_segment(std::uint64_t segment);
  void index_record(storage::position pos, std::int64_t ingest_ms, const id128& trace_id,
                    std::uint64_t bytes, std::span<const span* const> spans);
  trace_entry& index_keys(storage::position pos, std::int64_t ingest_ms, const id128& trace_id,
                          std::span<const span_key> keys, std::int64_t root_start_us,
                          std::int64_t min_start_us, segment_entry& seg);
  void journal_record(storage::position pos, std::int64_t ingest_ms, const id128& trace_id,
                      std::uint64_t bytes, std::int64_t root_start_us, std::int64_t min_start_us,
                      std::span<const span_key> keys, std::span<const id128> links);
  void seal_journal();
  void write_index_files();
  std::string index_path(std::uint64_t segment) const;
  void index_tag(std::string_view key, const std::string* value, std::uint64_t segment,
                 segment_entry& seg);
  // The id of a name (lower-cased; 0 for ""), counting one more user: every
  // span key holds its three names, and release() gives them back when
  // retention drops the key; a name nobody uses is forgotten and its id reused.
  std::uint32_t acquire(std::string_view text);
  void release(std::uint32_t id);
  std::optional<std::uint32_t> find_string(std::string_view text) const;
  result<std::vector<span>> read_trace(const trace_entry& t) const;
  bool keys_match(const trace_query& q, const trace_entry& t, std::uint32_t service,
                  std::uint32_t remote, std::uint32_t name) const;
  void index_tags(const span& s, std::uint64_t segment, segment_entry& seg);
  void index_names(const span_key& key, segment_entry& seg);
  void forget_segment(segment_entry& seg);
  void index_link(const id128& trace_id, const id128& target);

  io::file_system& fs_;
  const span_store_options opts_;
  std::unique_ptr<storage::log> log_;
  // Serialises log appends and reads (storage::log's threading contract).
  mutable std::mutex log_mutex_;

  mutable std::shared_mutex index_mutex_;
  std::vector<std::string> strings_{""};
  std::vector<std::uint32_t> string_refs_{0};  // span keys using each string id
  std::vector<std::uint32_t> free_string_ids_;
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::uint32_t, string_hash, std::equal_to<>> string_ids_;
  // A deque: growing it never moves the entries (no pause copying a million
  // of them under the exclusive lock).
  std::deque<trace_entry> traces_;
  std::vector<std::uint32_t> free_slots_;
  // Open addressing: no allocation per trace, one probe per lookup.
  boost::unordered_flat_map<id128, std::uint32_t, std::hash<id128>> trace_slots_;
  std::set<std::pair<std::int64_t, std::uint32_t>> by_time_;  // (timestamp_us, slot)
  std::map<std::uint32_t, service_entry> services_;
  tag_map tag_values_;
  // Lookup cache: the key entry last seen at each attribute position (spans of
  // one source list the same keys in the same order).
  std::vector<tag_map::value_type*> tag_key_cache_;
  std::map<std::uint64_t, segment_entry> segments_;
  std::unordered_map<id128, std::vector<id128>> linked_from_;
  std::uint64_t span_count_ = 0;
  std::uint64_t record_count_ = 0;
  std::uint64_t key_count_ = 0;
  std::string encode_buffer_;
  std::vector<span_key> key_scratch_;
  std::vector<id128> link_scratch_;
  // The active segment's entries for its index file (spans hold global string
  // ids until the segment is sealed). Valid when it holds the segment from its
  // first record on. Writer thread only.
  detail::segment_index journal_;
  bool journal_valid_ = false;
  // Finished index files waiting to be written (outside the index lock).
  std::vector<std::pair<std::uint64_t, std::string>> index_files_;
};

}  // namespace outrider::tracing
