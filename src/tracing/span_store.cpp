#include "tracing/span_store.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fmt/format.h>
#include <limits>

#include "base/assert.h"
#include "base/log.h"
#include "storage/log_format.h"
#include "tracing/detail/span_record.h"
#include "tracing/span_store_format.h"

namespace outrider::tracing {
namespace {

const log::logger logger{"span_store"};

constexpr std::int64_t nanos_per_micro = 1000;
constexpr std::int64_t micros_per_milli = 1000;
// Spans per record at most (a huge batch of one trace is split).
constexpr std::size_t max_spans_per_record = 4096;
constexpr std::uint32_t max_record_bytes = std::uint32_t{32} << 20;
constexpr std::uint32_t saturated_duration = std::numeric_limits<std::uint32_t>::max();

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::int64_t duration_us(const span& s) {
  const std::int64_t d = s.duration_ns();
  return d == 0 ? 0 : std::max<std::int64_t>(1, (d + nanos_per_micro - 1) / nanos_per_micro);
}

std::int64_t to_ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::uint64_t segment_of(storage::position pos) {
  return pos >> storage::log_format::offset_bits;
}

std::uint64_t offset_of(storage::position pos) {
  return pos & storage::log_format::offset_mask;
}

storage::position position_in(std::uint64_t segment, std::uint64_t offset) {
  return (segment << storage::log_format::offset_bits) | offset;
}

bool is_error(const span& s) {
  return s.status.code == status_code::error || s.attribute("error") != nullptr;
}

}  // namespace

span_store::span_store(io::file_system& fs, span_store_options opts)
    : fs_(fs), opts_(std::move(opts)) {}
span_store::~span_store() = default;

result<std::unique_ptr<span_store>> span_store::open(io::file_system& fs, span_store_options opts) {
  std::unique_ptr<span_store> store(new span_store(fs, std::move(opts)));
  storage::log_options lo;
  lo.segment_bytes = store->opts_.segment_bytes;
  lo.max_record_bytes = max_record_bytes;
  lo.cached_tail_bytes = store->opts_.cached_tail_bytes;
  auto lg = storage::log::open(fs, store->opts_.dir + "/" + span_store_format::log_subdir, lo);
  if (!lg) return std::move(lg).error();
  store->log_ = std::move(*lg);
  OUTRIDER_TRY(store->rebuild());
  return store;
}

std::string span_store::index_path(std::uint64_t segment) const {
  return fmt::format("{}/{}/{:020}{}", opts_.dir, span_store_format::index_subdir, segment,
                     span_store_format::index_suffix);
}

status span_store::rebuild() {
  const std::string index_dir = opts_.dir + "/" + span_store_format::index_subdir;
  OUTRIDER_TRY(fs_.create_dirs(index_dir));
  const std::uint64_t first = segment_of(log_->begin());
  const std::uint64_t active = segment_of(log_->end());
  // Index files of segments that are gone (or not finished) are stale.
  if (auto names = fs_.list_dir(index_dir)) {
    for (const auto& name : *names) {
      std::uint64_t number = 0;
      const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
      const bool ours =
          ec == std::errc{} && std::string_view(end) == span_store_format::index_suffix;
      if (!ours || number < first || number >= active)
        (void)fs_.remove_file(index_dir + "/" + name);
    }
  }
  std::size_t from_files = 0;
  std::size_t decoded = 0;
  for (std::uint64_t n = first; n <= active; ++n) {
    if (n < active && load_index_file(n)) {
      ++from_files;
      continue;
    }
    OUTRIDER_TRY(decode_segment(n));
    ++decoded;
    if (n < active) {
      std::unique_lock lock(index_mutex_);
      seal_journal();  // so that the next open reads the file
    }
  }
  write_index_files();
  logger.info(
      "span store {}: {} spans in {} traces, {} bytes on disk; {} segment(s) from index "
      "files, {} decoded",
      opts_.dir, span_count_, trace_slots_.size(), log_->bytes_on_disk(), from_files, decoded);
  return {};
}

status span_store::decode_segment(std::uint64_t segment) {
  {
    std::unique_lock lock(index_mutex_);
    journal_ = detail::segment_index{};
    journal_.segment = segment;
    journal_valid_ = true;
  }
  auto rd = log_->read_from(position_in(segment, storage::log_format::segment_header_size));
  if (!rd) return std::move(rd).error();
  std::vector<const span*> pointers;
  while (true) {
    auto next = rd->next();
    if (!next) return std::move(next).error();
    if (!next->has_value()) break;
    const storage::record& rec = **next;
    if (segment_of(rec.pos) != segment) break;
    if (rec.type != span_store_format::record_type_spans) continue;
    auto decoded = detail::decode_span_record(rec.payload);
    if (!decoded) {
      return error(errc::data_corruption, "span store: record at " + std::to_string(rec.pos) +
                                              ": " + decoded.error().message);
    }
    pointers.clear();
    for (const auto& s : decoded->spans) pointers.push_back(&s);
    std::unique_lock lock(index_mutex_);
    index_record(rec.pos, decoded->ingest_ms, decoded->trace_id,
                 rec.payload.size() + storage::log_format::record_header_size, pointers);
  }
  return {};
}

bool span_store::load_index_file(std::uint64_t segment) {
  const std::string path = index_path(segment);
  auto file = fs_.open_for_read(path);
  if (!file) return false;  // none: the segment is decoded
  auto size = (*file)->size();
  if (!size) return false;
  std::vector<std::byte> bytes(static_cast<std::size_t>(*size));
  auto got = (*file)->read_at(0, bytes);
  auto index = got && *got == bytes.size()
                   ? detail::decode_segment_index(bytes)
                   : result<detail::segment_index>(error(errc::data_corruption, "short read"));
  auto reject = [&](std::string_view why) {
    logger.warn("{}: {}; decoding segment {} from the log instead", path, why, segment);
    return false;
  };
  if (!index) return reject(index.error().message);
  if (index->segment != segment) return reject("written for another segment");
  // It must end where the segment ends: its last record is there, and nothing after it.
  if (!index->records.empty()) {
    const auto& last = index->records.back();
    auto rec = log_->read(position_in(segment, last.offset));
    if (!rec || rec->next != position_in(segment, last.offset + last.bytes))
      return reject("does not match the log");
    if (log_->read(rec->next)) return reject("the log segment holds more records");
  } else if (log_->read(position_in(segment, storage::log_format::segment_header_size))) {
    return reject("the log segment holds records");
  }
  std::unique_lock lock(index_mutex_);
  apply_index(*index);
  return true;
}

// REQUIRES: index_mutex_ held exclusively.
void span_store::apply_index(const detail::segment_index& index) {
  auto& seg = segments_[index.segment];
  // The file's strings once each; the span keys then count their own references.
  std::vector<std::uint32_t> ids(index.strings.size(), 0);
  for (std::size_t i = 1; i < index.strings.size(); ++i) ids[i] = acquire(index.strings[i]);
  std::size_t span_at = 0;
  std::size_t link_at = 0;
  for (const auto& r : index.records) {
    const storage::position pos = position_in(index.segment, r.offset);
    seg.bytes += r.bytes;
    key_scratch_.clear();
    for (std::uint32_t i = 0; i < r.span_count; ++i) {
      const auto& e = index.spans[span_at++];
      span_key key{ids[e.service], ids[e.name], ids[e.remote], e.duration_us};
      for (const std::uint32_t id : {key.service, key.name, key.remote}) {
        if (id != 0) ++string_refs_[id];
      }
      key_scratch_.push_back(key);
      index_names(key, seg);
    }
    index_keys(pos, r.ingest_ms, r.trace_id, key_scratch_, r.root_start_us, r.min_start_us, seg);
    for (std::uint32_t i = 0; i < r.link_count; ++i) index_link(r.trace_id, index.links[link_at++]);
  }
  for (std::size_t i = 1; i < index.strings.size(); ++i) release(ids[i]);
  for (const auto& key : index.tag_keys) index_tag(key, nullptr, index.segment, seg);
  for (const auto& [key, value] : index.tag_values) index_tag(key, &value, index.segment, seg);
}

// REQUIRES: index_mutex_ held exclusively. The journal becomes the segment's
// index file (written by write_index_files()).
void span_store::seal_journal() {
  if (!journal_valid_) return;
  journal_valid_ = false;
  detail::segment_index index = std::move(journal_);
  journal_ = detail::segment_index{};
  // Global string ids -> the file's own table.
  std::unordered_map<std::uint32_t, std::uint32_t> local{{0, 0}};
  auto map = [&](std::uint32_t& id) {
    auto [it, added] = local.emplace(id, static_cast<std::uint32_t>(index.strings.size()));
    if (added) index.strings.push_back(strings_[id]);
    id = it->second;
  };
  for (auto& e : index.spans) {
    map(e.service);
    map(e.name);
    map(e.remote);
  }
  if (auto it = segments_.find(index.segment); it != segments_.end()) {
    for (const auto* key : it->second.tag_keys) index.tag_keys.push_back(key->first);
    for (const auto& [value, key] : it->second.tag_values)
      index.tag_values.emplace_back(key->first, value->first);
    std::sort(index.tag_keys.begin(), index.tag_keys.end());  // the same bytes for the same data
    std::sort(index.tag_values.begin(), index.tag_values.end());
  }
  index_files_.emplace_back(index.segment, detail::encode_segment_index(index));
}

// Writer thread, no lock held. Not synced: a torn or lost file fails its
// checksum or is missing, and the segment is decoded from the log instead.
void span_store::write_index_files() {
  for (auto& [segment, bytes] : index_files_) {
    const std::string path = index_path(segment);
    const std::string temp = path + ".tmp";
    auto file = fs_.open_for_append(temp);
    status st = file ? status{} : status(file.error());
    if (st) st = (*file)->truncate(0);
    if (st) st = (*file)->append(std::as_bytes(std::span(bytes)));
    if (st) st = (*file)->close();
    if (st) st = fs_.rename(temp, path);
    if (!st) {
      logger.warn("{}: {} (the segment will be decoded on the next open)", path,
                  st.error().message);
      (void)fs_.remove_file(temp);
    }
  }
  index_files_.clear();
}

// REQUIRES: index_mutex_ held exclusively.
void span_store::journal_record(storage::position pos, std::int64_t ingest_ms,
                                const id128& trace_id, std::uint64_t bytes,
                                std::int64_t root_start_us, std::int64_t min_start_us,
                                std::span<const span_key> keys, std::span<const id128> links) {
  const std::uint64_t segment = segment_of(pos);
  if (segment != journal_.segment) {
    if (segment > journal_.segment) seal_journal();  // the log moved on: it is finished
    journal_ = detail::segment_index{};
    journal_.segment = segment;
    journal_valid_ = offset_of(pos) == storage::log_format::segment_header_size;
  }
  if (!journal_valid_) return;
  detail::segment_index::record_entry e;
  e.offset = offset_of(pos);
  e.ingest_ms = ingest_ms;
  e.trace_id = trace_id;
  e.bytes = bytes;
  e.root_start_us = root_start_us;
  e.min_start_us = min_start_us;
  e.span_count = static_cast<std::uint32_t>(keys.size());
  e.link_count = static_cast<std::uint32_t>(links.size());
  journal_.records.push_back(e);
  for (const auto& k : keys) journal_.spans.push_back({k.service, k.name, k.remote, k.duration_us});
  journal_.links.insert(journal_.links.end(), links.begin(), links.end());
}

namespace {
bool has_upper(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; });
}
}  // namespace

std::uint32_t span_store::acquire(std::string_view text) {
  if (text.empty()) return 0;
  std::uint32_t id = 0;
  if (!has_upper(text)) {  // the common case: no lower-cased copy to look it up
    if (auto it = string_ids_.find(text); it != string_ids_.end()) id = it->second;
  }
  if (id == 0) {
    std::string key = lower(text);
    if (auto it = string_ids_.find(key); it != string_ids_.end()) {
      id = it->second;
    } else if (!free_string_ids_.empty()) {
      id = free_string_ids_.back();
      free_string_ids_.pop_back();
      strings_[id] = key;
      string_ids_.emplace(std::move(key), id);
    } else {
      id = static_cast<std::uint32_t>(strings_.size());
      strings_.push_back(key);
      string_refs_.push_back(0);
      string_ids_.emplace(std::move(key), id);
    }
  }
  ++string_refs_[id];
  return id;
}

void span_store::release(std::uint32_t id) {
  if (id == 0) return;
  OUTRIDER_ASSERT(string_refs_[id] > 0, "span store: string released more often than acquired");
  if (--string_refs_[id] > 0) return;
  string_ids_.erase(string_ids_.find(strings_[id]));
  std::string().swap(strings_[id]);
  free_string_ids_.push_back(id);
}

std::optional<std::uint32_t> span_store::find_string(std::string_view text) const {
  auto it = has_upper(text) ? string_ids_.find(lower(text)) : string_ids_.find(text);
  if (it == string_ids_.end()) return std::nullopt;
  return it->second;
}

// REQUIRES: index_mutex_ held exclusively (as for the two below).
void span_store::index_tags(const span& s, std::uint64_t segment, segment_entry& seg) {
  constexpr std::size_t max_cached_positions = 64;
  std::string scratch;
  for (std::size_t i = 0; i < s.attributes.size(); ++i) {
    const auto& kv = s.attributes[i];
    tag_map::value_type* key = i < tag_key_cache_.size() ? tag_key_cache_[i] : nullptr;
    if (key == nullptr || key->first != kv.key) {
      if (!opts_.autocomplete_keys.empty() &&
          std::find(opts_.autocomplete_keys.begin(), opts_.autocomplete_keys.end(), kv.key) ==
              opts_.autocomplete_keys.end()) {
        continue;
      }
      auto it = tag_values_.find(kv.key);
      if (it == tag_values_.end()) {
        if (tag_values_.size() >= opts_.max_autocomplete_keys) continue;
        it = tag_values_.emplace(kv.key, tag_key_entry{}).first;
      }
      key = &*it;
      if (i < max_cached_positions) {
        if (tag_key_cache_.size() <= i) tag_key_cache_.resize(i + 1, nullptr);
        tag_key_cache_[i] = key;
      }
    }
    tag_key_entry& entry = key->second;
    if (entry.last_segment != segment) {
      if (seg.tag_keys.insert(key).second) ++entry.segments;
      entry.last_segment = segment;
    }
    std::string_view text;
    if (kv.value.kind == attribute_value::type::string) {
      text = kv.value.string_value;  // to_text() of a string is the string
    } else {
      scratch = kv.value.to_text();
      text = scratch;
    }
    if (text.size() > opts_.max_autocomplete_value_bytes) continue;
    tag_value_map::value_type* value = entry.last_value;
    if (value == nullptr || value->first != text) {
      auto it = entry.values.find(text);
      if (it == entry.values.end()) {
        if (entry.values.size() >= opts_.max_values_per_key) continue;
        it = entry.values.emplace(std::string(text), tag_value_entry{}).first;
      }
      value = &*it;
      entry.last_value = value;
    }
    if (value->second.last_segment != segment) {
      if (seg.tag_values.emplace(value, key).second) ++value->second.segments;
      value->second.last_segment = segment;
    }
  }
}

void span_store::index_names(const span_key& key, segment_entry& seg) {
  if (key.service == 0) return;
  constexpr int id_bits = 32;
  const std::uint64_t high = std::uint64_t{key.service} << id_bits;
  if (seg.services.insert(key.service).second) ++services_[key.service].segments;
  if (key.name != 0 && seg.span_names.insert(high | key.name).second)
    ++services_[key.service].span_names[key.name];
  if (key.remote != 0 && seg.remote_services.insert(high | key.remote).second)
    ++services_[key.service].remote_services[key.remote];
}

// Releases what a dropped segment held of the name and tag lists.
void span_store::forget_segment(segment_entry& seg) {
  constexpr int id_bits = 32;
  constexpr std::uint64_t id_mask = 0xffffffffU;
  auto release = [](std::map<std::uint32_t, std::uint32_t>& counts, std::uint32_t id) {
    auto it = counts.find(id);
    if (it != counts.end() && --it->second == 0) counts.erase(it);
  };
  for (const std::uint64_t pair : seg.span_names) {
    auto svc = services_.find(static_cast<std::uint32_t>(pair >> id_bits));
    if (svc != services_.end())
      release(svc->second.span_names, static_cast<std::uint32_t>(pair & id_mask));
  }
  for (const std::uint64_t pair : seg.remote_services) {
    auto svc = services_.find(static_cast<std::uint32_t>(pair >> id_bits));
    if (svc != services_.end())
      release(svc->second.remote_services, static_cast<std::uint32_t>(pair & id_mask));
  }
  for (const std::uint32_t id : seg.services) {
    auto svc = services_.find(id);
    if (svc != services_.end() && --svc->second.segments == 0) services_.erase(svc);
  }
  for (const auto& [value, key] : seg.tag_values) {
    if (--value->second.segments > 0) continue;
    if (key->second.last_value == value) key->second.last_value = nullptr;
    key->second.values.erase(key->second.values.find(value->first));
  }
  for (auto* key : seg.tag_keys) {
    if (--key->second.segments == 0) tag_values_.erase(tag_values_.find(key->first));
  }
  tag_key_cache_.clear();  // it may point at erased keys
}

// REQUIRES: index_mutex_ held exclusively (as for the ones below).
void span_store::index_tag(std::string_view key_text, const std::string* value,
                           std::uint64_t segment, segment_entry& seg) {
  if (!opts_.autocomplete_keys.empty() &&
      std::find(opts_.autocomplete_keys.begin(), opts_.autocomplete_keys.end(), key_text) ==
          opts_.autocomplete_keys.end()) {
    return;
  }
  auto it = tag_values_.find(key_text);
  if (it == tag_values_.end()) {
    if (tag_values_.size() >= opts_.max_autocomplete_keys) return;
    it = tag_values_.emplace(std::string(key_text), tag_key_entry{}).first;
  }
  tag_map::value_type* key = &*it;
  tag_key_entry& entry = key->second;
  if (entry.last_segment != segment) {
    if (seg.tag_keys.insert(key).second) ++entry.segments;
    entry.last_segment = segment;
  }
  if (value == nullptr || value->size() > opts_.max_autocomplete_value_bytes) return;
  auto vit = entry.values.find(*value);
  if (vit == entry.values.end()) {
    if (entry.values.size() >= opts_.max_values_per_key) return;
    vit = entry.values.emplace(*value, tag_value_entry{}).first;
  }
  tag_value_map::value_type* v = &*vit;
  if (v->second.last_segment != segment) {
    if (seg.tag_values.emplace(v, key).second) ++v->second.segments;
    v->second.last_segment = segment;
  }
}

void span_store::index_link(const id128& trace_id, const id128& target) {
  auto& from = linked_from_[target];
  if (std::find(from.begin(), from.end(), trace_id) == from.end()) from.push_back(trace_id);
}

span_store::trace_entry& span_store::index_keys(storage::position pos, std::int64_t ingest_ms,
                                                const id128& trace_id,
                                                std::span<const span_key> keys,
                                                std::int64_t root_start_us,
                                                std::int64_t min_start_us, segment_entry& seg) {
  seg.newest_ingest_ms = std::max(seg.newest_ingest_ms, ingest_ms);
  seg.spans += keys.size();
  std::uint32_t slot;
  if (auto it = trace_slots_.find(trace_id); it != trace_slots_.end()) {
    slot = it->second;
  } else {
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(traces_.size());
      traces_.emplace_back();
    }
    traces_[slot] = trace_entry{};
    traces_[slot].id = trace_id;
    trace_slots_.emplace(trace_id, slot);
  }
  trace_entry& t = traces_[slot];
  const std::int64_t old_timestamp = t.timestamp_us;
  t.records.push_back(record_ref{pos, static_cast<std::uint32_t>(keys.size())});
  t.keys.insert(t.keys.end(), keys.begin(), keys.end());
  // The root's start, else the earliest start (the first root of the trace wins).
  if (!t.has_root) {
    if (root_start_us > 0) {
      t.timestamp_us = root_start_us;
      t.has_root = true;
    } else if (min_start_us > 0 && (t.timestamp_us == 0 || min_start_us < t.timestamp_us)) {
      t.timestamp_us = min_start_us;
    }
  }
  key_count_ += keys.size();
  span_count_ += keys.size();
  ++record_count_;
  if (old_timestamp != t.timestamp_us || t.records.size() == 1) {
    by_time_.erase({old_timestamp, slot});
    by_time_.insert({t.timestamp_us, slot});
  }
  return t;
}

void span_store::index_record(storage::position pos, std::int64_t ingest_ms, const id128& trace_id,
                              std::uint64_t bytes, std::span<const span* const> spans) {
  const std::uint64_t segment = segment_of(pos);
  auto& seg = segments_[segment];
  seg.bytes += bytes;
  key_scratch_.clear();
  link_scratch_.clear();
  std::int64_t root_start_us = 0;
  std::int64_t min_start_us = 0;
  for (const span* s : spans) {
    span_key key{};
    key.service = acquire(s->service_name());
    key.name = acquire(s->name);
    key.remote = acquire(s->remote_endpoint.service_name);
    const std::int64_t d = duration_us(*s);
    key.duration_us = d >= saturated_duration ? saturated_duration : static_cast<std::uint32_t>(d);
    key_scratch_.push_back(key);
    index_names(key, seg);
    const std::int64_t start_us = s->start_ns / nanos_per_micro;
    if (start_us > 0) {
      if (s->parent_id == 0 && root_start_us == 0) root_start_us = start_us;
      if (min_start_us == 0 || start_us < min_start_us) min_start_us = start_us;
    }
    index_tags(*s, segment, seg);
    for (const span_link& l : s->links) {
      if (l.trace_id == trace_id) continue;
      index_link(trace_id, l.trace_id);
      link_scratch_.push_back(l.trace_id);
    }
  }
  index_keys(pos, ingest_ms, trace_id, key_scratch_, root_start_us, min_start_us, seg);
  journal_record(pos, ingest_ms, trace_id, bytes, root_start_us, min_start_us, key_scratch_,
                 link_scratch_);
}

status span_store::append(std::span<const span> spans, wall_time now) {
  if (spans.empty()) return {};
  const std::int64_t ingest_ms = to_ms(now);
  // Group by trace, keeping arrival order within a trace.
  std::unordered_map<id128, std::size_t> group_of;
  std::vector<std::pair<id128, std::vector<const span*>>> groups;
  for (const auto& s : spans) {
    auto [it, inserted] = group_of.emplace(s.trace_id, groups.size());
    if (inserted) groups.emplace_back(s.trace_id, std::vector<const span*>{});
    groups[it->second].second.push_back(&s);
  }
  struct appended {
    storage::position pos;
    std::size_t group;
    std::size_t first;
    std::size_t count;
    std::size_t bytes;
  };
  std::vector<appended> done;
  status failure;
  {
    std::lock_guard log_lock(log_mutex_);
    for (std::size_t g = 0; g < groups.size() && failure; ++g) {
      const auto& list = groups[g].second;
      for (std::size_t first = 0; first < list.size(); first += max_spans_per_record) {
        const std::size_t count = std::min(max_spans_per_record, list.size() - first);
        encode_buffer_.clear();
        detail::encode_span_record(encode_buffer_, ingest_ms, groups[g].first,
                                   std::span<const span* const>(list).subspan(first, count));
        auto pos = log_->append(span_store_format::record_type_spans,
                                std::as_bytes(std::span(encode_buffer_)));
        if (!pos) {
          failure = std::move(pos).error();
          break;
        }
        done.push_back(appended{*pos, g, first, count, encode_buffer_.size()});
      }
    }
  }
  {
    std::unique_lock lock(index_mutex_);
    for (const auto& a : done) {
      index_record(a.pos, ingest_ms, groups[a.group].first,
                   a.bytes + storage::log_format::record_header_size,
                   std::span<const span* const>(groups[a.group].second).subspan(a.first, a.count));
    }
  }
  if (!index_files_.empty()) write_index_files();  // a segment was finished
  return failure;
}

status span_store::sync() {
  auto r = log_->sync();
  if (!r) return std::move(r).error();
  return {};
}

result<std::size_t> span_store::enforce_retention(wall_time now) {
  const std::int64_t now_ms = to_ms(now);
  const std::int64_t max_age_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(opts_.max_age).count();
  std::uint64_t cut_segment = 0;
  std::size_t dropped = 0;
  {
    std::shared_lock lock(index_mutex_);
    std::lock_guard log_lock(log_mutex_);
    std::uint64_t bytes = log_->bytes_on_disk();
    const std::uint64_t active = segment_of(log_->end());
    for (const auto& [number, seg] : segments_) {
      if (number >= active) break;
      const bool too_old = max_age_ms > 0 && seg.newest_ingest_ms < now_ms - max_age_ms;
      const bool too_big = opts_.max_bytes > 0 && bytes > opts_.max_bytes;
      if (!too_old && !too_big) break;
      bytes -= std::min(bytes, seg.bytes);
      cut_segment = number + 1;
      ++dropped;
    }
  }
  if (dropped == 0) return std::size_t{0};
  const storage::position cut = cut_segment << storage::log_format::offset_bits;
  std::unique_lock lock(index_mutex_);
  {
    std::lock_guard log_lock(log_mutex_);
    OUTRIDER_TRY(log_->remove_segments_before(cut));
  }
  for (auto it = segments_.begin(); it != segments_.end() && it->first < cut_segment;) {
    (void)fs_.remove_file(index_path(it->first));
    span_count_ -= std::min(span_count_, it->second.spans);
    forget_segment(it->second);
    it = segments_.erase(it);
  }
  auto release_keys = [this](const trace_entry& t, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      release(t.keys[i].service);
      release(t.keys[i].name);
      release(t.keys[i].remote);
    }
  };
  boost::unordered::erase_if(trace_slots_, [&](const auto& entry) {
    const std::uint32_t slot = entry.second;
    trace_entry& t = traces_[slot];
    // A trace's records are in log order: the dropped ones, and their span
    // keys, are a prefix.
    auto& recs = t.records;
    std::size_t gone = 0;
    std::size_t gone_keys = 0;
    while (gone < recs.size() && recs[gone].pos < cut) gone_keys += recs[gone++].keys;
    if (gone == 0) return false;
    recs.erase(recs.begin(), recs.begin() + static_cast<std::ptrdiff_t>(gone));
    record_count_ -= gone;
    if (!recs.empty()) {
      release_keys(t, gone_keys);
      t.keys.erase(t.keys.begin(), t.keys.begin() + static_cast<std::ptrdiff_t>(gone_keys));
      key_count_ -= gone_keys;
      return false;
    }
    release_keys(t, t.keys.size());
    key_count_ -= t.keys.size();
    by_time_.erase({t.timestamp_us, slot});
    free_slots_.push_back(slot);
    linked_from_.erase(t.id);
    t = trace_entry{};
    return true;
  });
  logger.info("retention: dropped {} segment(s) before segment {}", dropped, cut_segment);
  return dropped;
}

result<std::vector<span>> span_store::read_trace(const trace_entry& t) const {
  std::vector<span> out;
  std::lock_guard log_lock(log_mutex_);
  for (const record_ref& ref : t.records) {
    auto rec = log_->read(ref.pos);
    if (!rec) {
      if (rec.error().code == errc::not_found) continue;  // reclaimed meanwhile
      return std::move(rec).error();
    }
    auto decoded = detail::decode_span_record(rec->payload);
    if (!decoded) return std::move(decoded).error();
    for (auto& s : decoded->spans) out.push_back(std::move(s));
  }
  return out;
}

result<std::vector<span>> span_store::get_trace(const id128& trace_id) const {
  std::shared_lock lock(index_mutex_);
  auto it = trace_slots_.find(trace_id);
  if (it == trace_slots_.end()) return std::vector<span>{};
  return read_trace(traces_[it->second]);
}

bool span_store::matches(const trace_query& q, const std::vector<span>& trace) {
  // Zipkin's QueryRequest.test: the root's timestamp (else the earliest) must
  // be in the window; every other condition must hold for some span of the
  // service (each may be met by a different span).
  std::int64_t timestamp = 0;
  for (const auto& s : trace) {
    const std::int64_t ts = s.start_ns / nanos_per_micro;
    if (ts <= 0) continue;
    if (s.parent_id == 0) {
      timestamp = ts;
      break;
    }
    if (timestamp == 0 || ts < timestamp) timestamp = ts;
  }
  if (timestamp == 0 || timestamp < (q.end_ts_ms - q.lookback_ms) * micros_per_milli ||
      timestamp > q.end_ts_ms * micros_per_milli) {
    return false;
  }
  const std::string service = lower(q.service_name);
  const std::string remote = lower(q.remote_service_name);
  const std::string name = lower(q.span_name);
  bool service_ok = service.empty();
  bool remote_ok = remote.empty();
  bool name_ok = name.empty();
  bool duration_ok = !q.min_duration_us && !q.max_duration_us;
  std::vector<bool> term_ok(q.annotation_query.size(), false);
  for (const auto& s : trace) {
    if (!service.empty() && lower(s.service_name()) != service) continue;
    service_ok = true;
    for (std::size_t i = 0; i < q.annotation_query.size(); ++i) {
      if (term_ok[i]) continue;
      const auto& [key, value] = q.annotation_query[i];
      if (!value) {
        for (const auto& e : s.events) term_ok[i] = term_ok[i] || e.name == key;
      }
      if (const auto* v = s.attribute(key); v != nullptr && (!value || v->to_text() == *value))
        term_ok[i] = true;
    }
    if (!remote_ok && lower(s.remote_endpoint.service_name) == remote) remote_ok = true;
    if (!name_ok && lower(s.name) == name) name_ok = true;
    if (!duration_ok) {
      const std::int64_t d = duration_us(s);
      duration_ok =
          d >= q.min_duration_us.value_or(0) && (!q.max_duration_us || d <= *q.max_duration_us);
    }
  }
  return service_ok && remote_ok && name_ok && duration_ok &&
         std::all_of(term_ok.begin(), term_ok.end(), [](bool b) { return b; });
}

// The index-only part of matches() (everything but annotationQuery). Returns
// false only when the trace certainly does not match.
bool span_store::keys_match(const trace_query& q, const trace_entry& t, std::uint32_t service,
                            std::uint32_t remote, std::uint32_t name) const {
  bool service_ok = service == 0;
  bool remote_ok = remote == 0;
  bool name_ok = name == 0;
  bool duration_ok = !q.min_duration_us && !q.max_duration_us;
  for (const auto& k : t.keys) {
    if (service != 0 && k.service != service) continue;
    service_ok = true;
    remote_ok = remote_ok || k.remote == remote;
    name_ok = name_ok || k.name == name;
    if (!duration_ok) {
      if (k.duration_us == saturated_duration) {
        duration_ok = true;  // unknown beyond the saturation point: let the full test decide
      } else {
        const std::int64_t d = k.duration_us;
        duration_ok =
            d >= q.min_duration_us.value_or(0) && (!q.max_duration_us || d <= *q.max_duration_us);
      }
    }
  }
  return service_ok && remote_ok && name_ok && duration_ok;
}

std::vector<id128> span_store::traces_linking_to(const id128& trace_id) const {
  std::shared_lock lock(index_mutex_);
  std::vector<id128> out;
  auto it = linked_from_.find(trace_id);
  if (it == linked_from_.end()) return out;
  for (const id128& id : it->second) {
    if (trace_slots_.contains(id)) out.push_back(id);  // still stored
  }
  return out;
}

result<std::vector<std::vector<span>>> span_store::find_traces(const trace_query& q) const {
  std::vector<std::vector<span>> out;
  std::shared_lock lock(index_mutex_);
  std::uint32_t service = 0, remote = 0, name = 0;
  for (auto [text, id] :
       {std::pair{&q.service_name, &service}, std::pair{&q.remote_service_name, &remote},
        std::pair{&q.span_name, &name}}) {
    if (text->empty()) continue;
    auto found = find_string(*text);
    if (!found) return out;  // a name never seen matches nothing
    *id = *found;
  }
  const std::int64_t end_us = q.end_ts_ms * micros_per_milli;
  const std::int64_t begin_us = (q.end_ts_ms - q.lookback_ms) * micros_per_milli;
  auto it = by_time_.upper_bound({end_us, std::numeric_limits<std::uint32_t>::max()});
  const bool needs_full_test =
      !q.annotation_query.empty() || q.min_duration_us || q.max_duration_us;
  while (it != by_time_.begin() && out.size() < q.limit) {
    --it;
    if (it->first < begin_us || it->first <= 0) break;
    const trace_entry& t = traces_[it->second];
    if (!keys_match(q, t, service, remote, name)) continue;
    auto spans = read_trace(t);
    if (!spans) return std::move(spans).error();
    if (spans->empty()) continue;
    if (needs_full_test && !matches(q, *spans)) continue;
    out.push_back(std::move(*spans));
  }
  return out;
}

std::vector<std::string> span_store::service_names() const {
  std::shared_lock lock(index_mutex_);
  std::vector<std::string> out;
  for (const auto& [id, entry] : services_) out.push_back(strings_[id]);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> span_store::span_names(std::string_view service) const {
  std::shared_lock lock(index_mutex_);
  std::vector<std::string> out;
  auto id = find_string(service);
  if (!id) return out;
  auto it = services_.find(*id);
  if (it == services_.end()) return out;
  for (const auto& [n, segments] : it->second.span_names) out.push_back(strings_[n]);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> span_store::remote_service_names(std::string_view service) const {
  std::shared_lock lock(index_mutex_);
  std::vector<std::string> out;
  auto id = find_string(service);
  if (!id) return out;
  auto it = services_.find(*id);
  if (it == services_.end()) return out;
  for (const auto& [n, segments] : it->second.remote_services) out.push_back(strings_[n]);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> span_store::autocomplete_keys() const {
  if (!opts_.autocomplete_keys.empty()) return opts_.autocomplete_keys;
  std::shared_lock lock(index_mutex_);
  std::vector<std::string> out;
  for (const auto& [k, v] : tag_values_) out.push_back(k);
  return out;
}

std::vector<std::string> span_store::autocomplete_values(std::string_view key) const {
  std::shared_lock lock(index_mutex_);
  auto it = tag_values_.find(key);
  std::vector<std::string> out;
  if (it == tag_values_.end()) return out;
  for (const auto& [value, segments] : it->second.values) out.push_back(value);
  return out;
}

result<std::vector<dependency_link>> span_store::dependencies(std::int64_t end_ts_ms,
                                                              std::int64_t lookback_ms) const {
  std::map<std::pair<std::string, std::string>, dependency_link> links;
  auto link = [&](const std::string& parent, const std::string& child, bool failed) {
    if (parent.empty() || child.empty() || parent == child) return;
    auto& l = links[{parent, child}];
    l.parent = parent;
    l.child = child;
    ++l.call_count;
    if (failed) ++l.error_count;
  };
  std::shared_lock lock(index_mutex_);
  const std::int64_t end_us = end_ts_ms * micros_per_milli;
  const std::int64_t begin_us = (end_ts_ms - lookback_ms) * micros_per_milli;
  auto it = by_time_.upper_bound({end_us, std::numeric_limits<std::uint32_t>::max()});
  while (it != by_time_.begin()) {
    --it;
    if (it->first < begin_us || it->first <= 0) break;
    auto spans = read_trace(traces_[it->second]);
    if (!spans) return std::move(spans).error();
    std::unordered_map<std::uint64_t, const span*> by_id;
    std::unordered_map<std::uint64_t, const span*> client_by_id;
    std::unordered_map<std::uint64_t, bool>
        has_callee;  // client/producer span id -> a server/consumer answers it
    for (const auto& s : *spans) {
      if (s.kind == span_kind::client || s.kind == span_kind::producer)
        client_by_id[s.span_id] = &s;
      if (!s.shared) by_id.emplace(s.span_id, &s);
    }
    for (const auto& s : *spans) {
      if (s.kind != span_kind::server && s.kind != span_kind::consumer) continue;
      if (s.shared) {
        has_callee[s.span_id] = true;
      } else if (s.parent_id != 0) {
        has_callee[s.parent_id] = true;
      }
    }
    for (const auto& s : *spans) {
      const std::string service = lower(s.service_name());
      if (s.kind == span_kind::server || s.kind == span_kind::consumer) {
        const span* caller = nullptr;
        if (s.shared) {
          if (auto c = client_by_id.find(s.span_id); c != client_by_id.end()) caller = c->second;
        } else if (auto p = by_id.find(s.parent_id); s.parent_id != 0 && p != by_id.end()) {
          caller = p->second;
        }
        const std::string parent = caller != nullptr ? lower(caller->service_name())
                                                     : lower(s.remote_endpoint.service_name);
        link(parent, service, is_error(s));
      } else if (s.kind == span_kind::client || s.kind == span_kind::producer) {
        if (!has_callee[s.span_id])
          link(service, lower(s.remote_endpoint.service_name), is_error(s));
      }
    }
  }
  std::vector<dependency_link> out;
  for (auto& [k, v] : links) out.push_back(std::move(v));
  return out;
}

span_store_stats span_store::stats() const {
  std::shared_lock lock(index_mutex_);
  span_store_stats st;
  st.spans = span_count_;
  st.traces = trace_slots_.size();
  st.records = record_count_;
  st.strings = strings_.size() - 1 - free_string_ids_.size();
  {
    std::lock_guard log_lock(log_mutex_);
    st.bytes_on_disk = log_->bytes_on_disk();
    st.segments = log_->segment_count();
  }
  // Estimate: entries, their vectors, the hash map and the time-ordered set (per node overheads).
  constexpr std::uint64_t hash_node_bytes = 48;
  constexpr std::uint64_t tree_node_bytes = 48;
  st.index_bytes = traces_.size() * sizeof(trace_entry) + record_count_ * sizeof(record_ref) +
                   key_count_ * sizeof(span_key) +
                   trace_slots_.bucket_count() * (sizeof(decltype(trace_slots_)::value_type) + 1) +
                   by_time_.size() * tree_node_bytes;
  for (const auto& s : strings_) st.index_bytes += s.size() + sizeof(std::string) + hash_node_bytes;
  return st;
}

}  // namespace outrider::tracing
