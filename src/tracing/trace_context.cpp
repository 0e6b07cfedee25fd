#include "tracing/trace_context.h"

#include <array>
#include <bit>
#include <cstring>

#include "tracing/span.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace outrider::tracing {
namespace {

constexpr std::size_t trace_id_digits = 32;
constexpr std::size_t span_id_digits = 16;
constexpr std::size_t flags_hex = 2;
constexpr std::size_t version_hex = 2;
constexpr std::size_t trace_id_pos = version_hex + 1;                      // 3
constexpr std::size_t parent_id_pos = trace_id_pos + trace_id_digits + 1;  // 36
constexpr std::size_t flags_pos = parent_id_pos + span_id_digits + 1;      // 53
constexpr std::uint8_t invalid_version = 0xff;
constexpr std::size_t max_key_size = 256;
constexpr std::size_t max_tenant_size = 241;
constexpr std::size_t max_system_size = 14;
constexpr std::size_t max_value_size = 256;

bool is_lower_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
bool all_lower_hex(std::string_view s) noexcept {
  for (char c : s) {
    if (!is_lower_hex(c)) return false;
  }
  return true;
}
int hex_digit(char c) noexcept {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}
bool is_lcalpha(char c) noexcept {
  return c >= 'a' && c <= 'z';
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_keychar(char c) noexcept {
  return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}
std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Lower-case hex of exactly `size` digits to a number (REQUIRES: all_lower_hex).
std::uint64_t hex_value(std::string_view s) noexcept {
  std::uint64_t v = 0;
  for (char c : s) v = (v << 4) | static_cast<std::uint64_t>(hex_digit(c));
  return v;
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char digits_table[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(digits_table[(v >> (4 * i)) & 0xf]);
}

// Lower-case hex digit values; 0xff for every other byte.
constexpr auto hex_table = [] {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0xff;
  for (int c = '0'; c <= '9'; ++c)
    t[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) {
    t[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c - 'a' + 10);
  }
  return t;
}();

#if !defined(__SSE2__)
// The 8 lower-case hex digits of `v` as 8 bytes to store as they are (the first
// digit at the lowest address), without a table or a loop: the nibbles are
// spread one per byte, then all turned into ASCII at once.
std::uint64_t hex8(std::uint32_t v) noexcept {
  static_assert(std::endian::native == std::endian::little);
  std::uint64_t x = v;
  x = ((x & 0xffff0000ULL) << 16) | (x & 0x0000ffffULL);
  x = ((x & 0x0000ff000000ff00ULL) << 8) | (x & 0x000000ff000000ffULL);
  x = ((x & 0x00f000f000f000f0ULL) << 4) | (x & 0x000f000f000f000fULL);
  // Each byte holds one nibble n (the most significant in the top byte); n + 6
  // carries into bit 4 exactly when n is a letter.
  const std::uint64_t letters = ((x + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
  x += 0x3030303030303030ULL + letters * ('a' - '0' - 10);
  return __builtin_bswap64(x);
}
#endif

// 16 lower-case hex digits of `v` at `out`.
#if defined(__SSE2__)
// All sixteen at once in one SSE2 register (x86-64's baseline): the bytes most
// significant first, their high and low nibbles interleaved one per byte, then
// '0' added to each and 'a' - '0' - 10 more to the letters.
void write_hex(char* out, std::uint64_t v) noexcept {
  const __m128i bytes = _mm_cvtsi64_si128(static_cast<long long>(__builtin_bswap64(v)));
  const __m128i low_nibble = _mm_set1_epi8(0x0f);
  const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
  const __m128i low = _mm_and_si128(bytes, low_nibble);
  const __m128i digits = _mm_unpacklo_epi8(high, low);
  const __m128i letters = _mm_cmpgt_epi8(digits, _mm_set1_epi8(9));
  const __m128i ascii = _mm_add_epi8(_mm_add_epi8(digits, _mm_set1_epi8('0')),
                                     _mm_and_si128(letters, _mm_set1_epi8('a' - '0' - 10)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), ascii);
}
#else
void write_hex(char* out, std::uint64_t v) noexcept {
  const std::uint64_t high = hex8(static_cast<std::uint32_t>(v >> 32));
  const std::uint64_t low = hex8(static_cast<std::uint32_t>(v));
  std::memcpy(out, &high, sizeof high);
  std::memcpy(out + 8, &low, sizeof low);
}
#endif

// Exactly `n` lower-case hex digits at `p` into `out`; false on any other character.
bool read_hex(const char* p, std::size_t n, std::uint64_t& out) noexcept {
  std::uint64_t v = 0;
  unsigned bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t d = hex_table[static_cast<unsigned char>(p[i])];
    bad |= d;  // 0xff for a non-digit
    v = (v << 4) | (d & 0xf);
  }
  out = v;
  return bad < 0x10;
}

#if !defined(__SSE2__)
// The value of the 8 lower-case hex digits at `p` into `out`; false on any
// other character. Eight at a time in one 64-bit word (one digit per byte):
// each byte is classified by SWAR compares (all bytes are ASCII, so setting
// their top bit and subtracting never borrows across bytes), then the nibbles
// are packed pairwise.
bool read_hex8(const char* p, std::uint32_t& out) noexcept {
  static_assert(std::endian::native == std::endian::little);
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t high = 0x8080808080808080ULL;
  std::uint64_t x = 0;
  std::memcpy(&x, p, sizeof x);  // the first digit in the lowest byte
  const auto at_least = [&](std::uint64_t c) { return ((x | high) - c * ones) & high; };
  const std::uint64_t digit = at_least('0') & ~at_least('9' + 1);
  const std::uint64_t letter = at_least('a') & ~at_least('f' + 1);
  if ((x & high) != 0 || (digit | letter) != high) return false;
  std::uint64_t n = (x & (0x0f * ones)) + (letter >> 7) * 9;  // one nibble per byte
  n = ((n << 4) + (n >> 8)) & 0x00ff00ff00ff00ffULL;          // pairs of digits
  n = ((n << 8) + (n >> 16)) & 0x0000ffff0000ffffULL;         // fours
  out = static_cast<std::uint32_t>((n << 16) + (n >> 32));    // eight
  return true;
}

#endif

// 16 lower-case hex digits at `p`.
#if defined(__SSE2__)
// All sixteen at once in one SSE2 register: each byte classified by signed
// compares (bytes from 0x80 are negative: neither a digit nor a letter),
// turned into its value, then the digits packed pairwise into bytes.
[[gnu::always_inline]] inline bool read_hex16(const char* p, std::uint64_t& out) noexcept {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const auto between = [&x](char lo, char hi) {
    return _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmpgt_epi8(_mm_set1_epi8(static_cast<char>(hi + 1)), x));
  };
  const __m128i digit = between('0', '9');
  const __m128i letter = between('a', 'f');
  const bool ok = _mm_movemask_epi8(_mm_or_si128(digit, letter)) == 0xffff;
  const __m128i value = _mm_sub_epi8(_mm_sub_epi8(x, _mm_set1_epi8('0')),
                                     _mm_and_si128(letter, _mm_set1_epi8('a' - '0' - 10)));
  // Lane i (16 bits) holds digits 2i (low byte) and 2i + 1: 16 * first + second.
  const __m128i pairs = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(value, _mm_set1_epi16(0x0f)), 4),
                                     _mm_srli_epi16(value, 8));
  const __m128i bytes = _mm_packus_epi16(_mm_and_si128(pairs, _mm_set1_epi16(0xff)), pairs);
  out = __builtin_bswap64(static_cast<std::uint64_t>(_mm_cvtsi128_si64(bytes)));
  return ok;
}
#else
bool read_hex16(const char* p, std::uint64_t& out) noexcept {
  std::uint32_t high = 0;
  std::uint32_t low = 0;
  const bool ok = read_hex8(p, high) & read_hex8(p + 8, low);
  out = (static_cast<std::uint64_t>(high) << 32) | low;
  return ok;
}
#endif

}  // namespace

std::optional<traceparent_fields> parse_traceparent(std::string_view value) noexcept {
  if (value.size() < version_hex + 1) return std::nullopt;
  std::uint64_t v = 0;
  if (!read_hex(value.data(), version_hex, v) || value[version_hex] != '-') return std::nullopt;
  if (v == invalid_version) return std::nullopt;
  if (v == traceparent_version && value.size() != traceparent_size) return std::nullopt;
  if (value.size() < traceparent_size) return std::nullopt;
  if (value[parent_id_pos - 1] != '-' || value[flags_pos - 1] != '-') return std::nullopt;
  // Higher versions: after the flags comes the end or a dash (more fields, ignored).
  if (value.size() > traceparent_size && value[traceparent_size] != '-') return std::nullopt;
  const char* p = value.data();
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  std::uint64_t parent = 0;
  std::uint64_t flags = 0;
  if (!read_hex16(p + trace_id_pos, high) || !read_hex16(p + trace_id_pos + span_id_digits, low) ||
      !read_hex16(p + parent_id_pos, parent) || !read_hex(p + flags_pos, flags_hex, flags)) {
    return std::nullopt;
  }
  traceparent_fields out;
  out.version = static_cast<std::uint8_t>(v);
  out.trace_id = id128{high, low};
  out.parent_id = parent;
  if (out.trace_id.is_zero() || out.parent_id == 0) return std::nullopt;
  out.flags = static_cast<std::uint8_t>(flags & trace_flag_sampled);
  return out;
}

void write_traceparent(const id128& trace_id, std::uint64_t span_id, std::uint8_t flags,
                       char* out) noexcept {
  out[0] = '0';
  out[1] = '0';
  out[2] = '-';
  write_hex(out + trace_id_pos, trace_id.high);
  write_hex(out + trace_id_pos + span_id_digits, trace_id.low);
  out[parent_id_pos - 1] = '-';
  write_hex(out + parent_id_pos, span_id);
  out[flags_pos - 1] = '-';
  out[flags_pos] = '0';
  out[flags_pos + 1] = (flags & trace_flag_sampled) != 0 ? '1' : '0';
}

std::string format_traceparent(const id128& trace_id, std::uint64_t span_id, std::uint8_t flags) {
  char buf[traceparent_size];
  write_traceparent(trace_id, span_id, flags, buf);
  return std::string(buf, sizeof buf);
}

bool valid_tracestate_key(std::string_view key) noexcept {
  if (key.empty() || key.size() > max_key_size) return false;
  const auto at = key.find('@');
  if (at == std::string_view::npos) {
    if (!is_lcalpha(key.front())) return false;
    for (char c : key.substr(1)) {
      if (!is_keychar(c)) return false;
    }
    return true;
  }
  const std::string_view tenant = key.substr(0, at);
  const std::string_view system = key.substr(at + 1);
  if (tenant.empty() || tenant.size() > max_tenant_size) return false;
  if (system.empty() || system.size() > max_system_size) return false;
  if (!is_lcalpha(tenant.front()) && !is_digit(tenant.front())) return false;
  if (!is_lcalpha(system.front())) return false;
  for (char c : tenant.substr(1)) {
    if (!is_keychar(c)) return false;
  }
  for (char c : system.substr(1)) {
    if (!is_keychar(c)) return false;
  }
  return true;
}

bool valid_tracestate_value(std::string_view value) noexcept {
  if (value.empty() || value.size() > max_value_size) return false;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
  }
  return value.back() != ' ';
}

std::vector<tracestate_member> parse_tracestate(std::string_view combined) {
  std::vector<tracestate_member> out;
  while (true) {
    const auto comma = combined.find(',');
    const std::string_view member = trim_ows(combined.substr(0, comma));
    if (!member.empty()) {
      const auto eq = member.find('=');
      if (eq != std::string_view::npos) {
        const std::string_view key = member.substr(0, eq);
        const std::string_view value = member.substr(eq + 1);
        bool duplicate = false;
        for (const auto& m : out) duplicate = duplicate || m.key == key;
        if (!duplicate && valid_tracestate_key(key) && valid_tracestate_value(value)) {
          out.push_back({std::string(key), std::string(value)});
        }
      }
    }
    if (comma == std::string_view::npos) break;
    combined.remove_prefix(comma + 1);
  }
  if (out.size() > tracestate_max_members) out.resize(tracestate_max_members);
  return out;
}

std::string format_tracestate(const std::vector<tracestate_member>& members, std::size_t max_size) {
  std::vector<bool> keep(members.size(), true);
  auto entry_size = [&](std::size_t i) {
    return members[i].key.size() + 1 + members[i].value.size();
  };
  std::size_t total = 0;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < members.size(); ++i) {
    total += entry_size(i);
    ++kept;
  }
  auto size_of = [&] { return kept == 0 ? 0 : total + kept - 1; };  // commas between entries
  // Entries longer than 128 characters go first (right to left), then from the right.
  for (std::size_t i = members.size(); i-- > 0 && size_of() > max_size;) {
    if (entry_size(i) > tracestate_long_entry) {
      keep[i] = false;
      total -= entry_size(i);
      --kept;
    }
  }
  for (std::size_t i = members.size(); i-- > 0 && size_of() > max_size;) {
    if (keep[i]) {
      keep[i] = false;
      total -= entry_size(i);
      --kept;
    }
  }
  std::string out;
  out.reserve(size_of());
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (!keep[i]) continue;
    if (!out.empty()) out.push_back(',');
    out += members[i].key;
    out.push_back('=');
    out += members[i].value;
  }
  return out;
}

std::optional<span_context> parse_b3_single(std::string_view value) noexcept {
  value = trim_ows(value);
  const auto first = value.find('-');
  if (first == std::string_view::npos) return std::nullopt;  // sampling state only, or junk
  const std::string_view trace = value.substr(0, first);
  std::string_view rest = value.substr(first + 1);
  const auto second = rest.find('-');
  const std::string_view span = rest.substr(0, second);
  std::string_view sampling;
  if (second != std::string_view::npos) {
    rest.remove_prefix(second + 1);
    const auto third = rest.find('-');
    sampling = rest.substr(0, third);
    if (third != std::string_view::npos) {
      const std::string_view parent = rest.substr(third + 1);
      if (parent.size() != span_id_digits || !all_lower_hex(parent)) return std::nullopt;
    }
    if (sampling != "0" && sampling != "1" && sampling != "d") return std::nullopt;
  }
  if ((trace.size() != trace_id_digits && trace.size() != span_id_digits) ||
      !all_lower_hex(trace)) {
    return std::nullopt;
  }
  if (span.size() != span_id_digits || !all_lower_hex(span)) return std::nullopt;
  span_context c;
  c.trace_id = *parse_trace_id(trace);
  c.span_id = hex_value(span);
  c.flags = (sampling.empty() || sampling == "1" || sampling == "d") ? trace_flag_sampled : 0;
  c.remote = true;
  if (!c.valid()) return std::nullopt;
  return c;
}

std::optional<span_context> parse_b3_multi(std::string_view trace_id, std::string_view span_id,
                                           std::string_view sampled,
                                           std::string_view flags) noexcept {
  trace_id = trim_ows(trace_id);
  span_id = trim_ows(span_id);
  sampled = trim_ows(sampled);
  if ((trace_id.size() != trace_id_digits && trace_id.size() != span_id_digits) ||
      !all_lower_hex(trace_id)) {
    return std::nullopt;
  }
  if (span_id.size() != span_id_digits || !all_lower_hex(span_id)) return std::nullopt;
  span_context c;
  c.trace_id = *parse_trace_id(trace_id);
  c.span_id = hex_value(span_id);
  const bool debug = trim_ows(flags) == "1";
  // Absent sampling: the receiver decides; we continue sampled (as a sampled parent would).
  const bool yes = sampled.empty() || sampled == "1" || sampled == "true" || sampled == "d";
  c.flags = (debug || yes) ? trace_flag_sampled : 0;
  c.remote = true;
  if (!c.valid()) return std::nullopt;
  return c;
}

std::string format_b3_single(const span_context& c) {
  std::string out;
  out.reserve(trace_id_digits + span_id_digits + 4);
  append_hex(out, c.trace_id.high, span_id_digits);
  append_hex(out, c.trace_id.low, span_id_digits);
  out.push_back('-');
  append_hex(out, c.span_id, span_id_digits);
  out += c.sampled() ? "-1" : "-0";
  return out;
}

namespace {
// extract_context's less usual parts, out of line (see note_trace_field).
[[gnu::noinline]] void set_trace_state(span_context& out, std::string_view tracestate) {
  out.trace_state = normalize_tracestate(tracestate);
}
[[gnu::noinline]] bool extract_b3(const carrier_headers& h, span_context& out);
}  // namespace

bool extract_context(const carrier_headers& h, span_context& out) {
  if (!h.traceparent.empty()) {
    // An invalid traceparent is not fixed up by B3: the trace restarts.
    const auto tp = parse_traceparent(h.traceparent);
    if (!tp) return false;
    out.trace_id = tp->trace_id;
    out.span_id = tp->parent_id;
    out.flags = tp->flags;
    if (!h.tracestate.empty()) {
      set_trace_state(out, h.tracestate);
    } else {
      out.trace_state.clear();
    }
    out.remote = true;
    return true;
  }
  return extract_b3(h, out);
}

namespace {
bool extract_b3(const carrier_headers& h, span_context& out) {
  std::optional<span_context> b3;
  if (!h.b3.empty()) {
    b3 = parse_b3_single(h.b3);
  } else if (!h.x_b3_trace_id.empty()) {
    b3 = parse_b3_multi(h.x_b3_trace_id, h.x_b3_span_id, h.x_b3_sampled, h.x_b3_flags);
  }
  if (!b3) return false;
  out = std::move(*b3);
  return true;
}
}  // namespace

std::optional<span_context> extract_context(const carrier_headers& h) {
  span_context c;
  if (!extract_context(h, c)) return std::nullopt;
  return c;
}

namespace {

// carrier_from_fields for the fields other than traceparent whose names start
// t, b or x: out of line, so that the usual request (a traceparent, no other
// trace header) runs through a loop of a few cache lines.
[[gnu::noinline]] void note_trace_field(carrier_headers& h, const http::fields::field& f,
                                        std::size_t& tracestates, std::string& tracestate_storage) {
  const std::string_view name = f.name;
  if (http::iequals(name, "tracestate")) {
    h.any_tracestate = true;
    if (++tracestates == 1) {
      h.tracestate = f.value;
    } else {
      if (tracestates == 2) tracestate_storage = std::string(h.tracestate);
      tracestate_storage += ',';
      tracestate_storage += f.value;
    }
  } else if (http::iequals(name, "b3")) {
    h.b3 = f.value;
    h.any_b3 = true;
  } else if (name.size() > 5 && http::iequals(name.substr(0, 5), "x-b3-")) {
    h.any_b3 = true;
    if (http::iequals(name, "x-b3-traceid")) {
      h.x_b3_trace_id = f.value;
    } else if (http::iequals(name, "x-b3-spanid")) {
      h.x_b3_span_id = f.value;
    } else if (http::iequals(name, "x-b3-sampled")) {
      h.x_b3_sampled = f.value;
    } else if (http::iequals(name, "x-b3-flags")) {
      h.x_b3_flags = f.value;
    }
  }
}

}  // namespace

carrier_headers carrier_from_fields(const http::fields& fields, std::string& tracestate_storage) {
  carrier_headers h;
  std::size_t tracestates = 0;
  for (const auto& f : fields) {
    const std::string_view name = f.name;
    // Only names starting t, b or x can be trace headers: skip the rest cheaply.
    const char first = name.empty() ? '\0' : static_cast<char>(name.front() | 0x20);
    if (first != 't' && first != 'b' && first != 'x') continue;
    if (http::iequals(name, "traceparent")) {
      if (h.traceparent.empty()) h.traceparent = f.value;
      if (h.traceparents < 2) ++h.traceparents;
    } else {
      note_trace_field(h, f, tracestates, tracestate_storage);
    }
  }
  if (tracestates > 1) h.tracestate = tracestate_storage;
  return h;
}

}  // namespace outrider::tracing
