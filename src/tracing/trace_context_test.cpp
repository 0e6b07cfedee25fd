// One test per MUST / MUST NOT of W3C Trace Context Level 1 (the
// Recommendation), named after the rule, plus the SHOULDs we follow and B3.
#include "tracing/trace_context.h"

#include <cstdio>
#include <gtest/gtest.h>

#include "base/clock.h"
#include "tracing/tracer.h"

namespace outrider::tracing {
namespace {

constexpr std::string_view valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::string_view trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";

std::optional<span_context> extract_w3c(std::string_view tp, std::string_view ts = "") {
  carrier_headers h;
  h.traceparent = tp;
  h.tracestate = ts;
  return extract_context(h);
}

// --- traceparent ------------------------------------------------------------------------------

TEST(Traceparent, ParsesTheSpecExample) {
  auto tp = parse_traceparent(valid);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->trace_id.to_hex(), trace_hex);
  EXPECT_EQ(tp->parent_id, 0x00f067aa0ba902b7ULL);
  EXPECT_EQ(tp->flags, trace_flag_sampled);
  EXPECT_EQ(tp->version, 0);
  auto not_sampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(not_sampled);
  EXPECT_EQ(not_sampled->flags, 0);
}

// "Vendors MUST expect the header name in any case" (both headers).
TEST(Traceparent, WrittenDigitsAreLowerCaseHexOfEveryId) {
  xoshiro_random rng(11);
  std::vector<std::pair<id128, std::uint64_t>> ids = {
      {id128{1, 0}, 1},
      {id128{~0ULL, ~0ULL}, ~0ULL},
      {id128{0x0123456789abcdef, 0xa0b1c2d3e4f5a6b7}, 0x9a}};
  for (int i = 0; i < 200; ++i)
    ids.push_back({id128{rng.next_u64(), rng.next_u64()}, rng.next_u64()});
  for (const auto& [trace, span] : ids) {
    char expected[80];
    std::snprintf(expected, sizeof expected, "00-%016llx%016llx-%016llx-01",
                  static_cast<unsigned long long>(trace.high),
                  static_cast<unsigned long long>(trace.low),
                  static_cast<unsigned long long>(span));
    EXPECT_EQ(format_traceparent(trace, span, trace_flag_sampled), expected);
    auto back = parse_traceparent(expected);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->trace_id, trace);
    EXPECT_EQ(back->parent_id, span);
  }
}

TEST(Traceparent, EveryByteInEveryIdDigitIsCheckedAndRead) {
  // Each digit of the trace-id and parent-id, replaced by each byte: accepted
  // exactly when it is a lower-case hex digit, and then read as its value.
  for (std::size_t pos = 3; pos < 52; ++pos) {
    if (pos == 35) continue;  // the '-' between the ids
    for (int b = 0; b < 256; ++b) {
      std::string text(valid);
      text[pos] = static_cast<char>(b);
      const bool hex = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f');
      const auto tp = parse_traceparent(text);
      ASSERT_EQ(tp.has_value(), hex) << "position " << pos << " byte " << b;
      if (!tp) continue;
      EXPECT_EQ(format_traceparent(tp->trace_id, tp->parent_id, trace_flag_sampled), text)
          << "position " << pos << " byte " << b;
    }
  }
}

TEST(Traceparent, MustExpectTheHeaderNameInAnyCase) {
  http::fields f;
  f.add("TraceParent", valid);
  f.add("TRACESTATE", "congo=t61rcWkgMzE");
  std::string storage;
  auto c = extract_context(carrier_from_fields(f, storage));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_id.to_hex(), trace_hex);
  EXPECT_EQ(c->trace_state, "congo=t61rcWkgMzE");
}

// "Version ff is invalid" (forbidden).
TEST(Traceparent, VersionFfIsInvalid) {
  EXPECT_FALSE(parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
}

// A version that is not 2 lower-case hex digits followed by '-' restarts the trace.
TEST(Traceparent, UnparsableVersionPrefixRestartsTheTrace) {
  EXPECT_FALSE(parse_traceparent("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent(""));
}

// "If the trace-id value is invalid (non-allowed characters or all zeros),
// vendors MUST ignore the traceparent."
TEST(Traceparent, MustIgnoreTraceIdWithNonAllowedCharacters) {
  EXPECT_FALSE(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"));
}
TEST(Traceparent, MustIgnoreAllZeroTraceId) {
  EXPECT_FALSE(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
}

// "Vendors MUST ignore the traceparent when the parent-id is invalid (for
// example, if it contains non-lowercase hex characters)"; all zeros is invalid.
TEST(Traceparent, MustIgnoreParentIdWithNonLowercaseHex) {
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01"));
}
TEST(Traceparent, MustIgnoreAllZeroParentId) {
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
}

TEST(Traceparent, InvalidFlagsAreIgnored) {
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"));
  EXPECT_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"));
}

// Version 00 has exactly four fields: trailing data makes it invalid.
TEST(Traceparent, Version00WithTrailingDataIsInvalid) {
  EXPECT_FALSE(parse_traceparent(std::string(valid) + "-extra"));
  EXPECT_FALSE(parse_traceparent(std::string(valid) + "x"));
}

// "Other flags ... Vendors MUST set those to zero": reserved bits are dropped
// on parse and never emitted, while the sampled bit is read with a mask.
TEST(Traceparent, MustSetOtherFlagsToZero) {
  auto tp = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09");
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->flags, trace_flag_sampled);
  auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe");
  ASSERT_TRUE(unsampled);
  EXPECT_EQ(unsampled->flags, 0);
  EXPECT_EQ(format_traceparent(tp->trace_id, 1, 0xff),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-01");
}

// Higher versions: "Vendors MUST check that the 32 characters are hex, and that
// they are followed by a dash".
TEST(Traceparent, HigherVersionMustCheckTraceIdIsHexFollowedByDash) {
  EXPECT_TRUE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01"));
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01"));
}
// "... MUST check that the 16 characters are hex and followed by a dash."
TEST(Traceparent, HigherVersionMustCheckParentIdIsHexFollowedByDash) {
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01"));
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7x01"));
}
// "... MUST check that the 2 characters are either at the end of the string or
// followed by a dash."
TEST(Traceparent, HigherVersionMustCheckFlagsEndTheStringOrAreFollowedByDash) {
  EXPECT_TRUE(parse_traceparent(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like"));
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what"));
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
}
// Shorter than 55 characters: not parsed (the trace restarts).
TEST(Traceparent, HigherVersionShorterThan55IsNotParsed) {
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"));
}
// "Vendors MUST NOT parse or assume anything about unknown fields for this
// version. Vendors MUST use these fields to construct the new traceparent
// field according to the highest version ... known (00)."
TEST(Traceparent, MustIgnoreUnknownFieldsAndDowngradeToVersion00) {
  auto c = extract_w3c("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-ffff-zz");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->flags, trace_flag_sampled);
  simulated_clock clk;
  struct null_sink final : span_sink {
    void export_span(span&&) override {}
  } sink;
  tracer t({}, borrow(sink), borrow(clk));
  auto child = t.start_span("x", span_kind::server, &*c);
  const std::string out = child.traceparent();
  EXPECT_EQ(out.substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(out.size(), traceparent_size);
  EXPECT_EQ(out.substr(53), "01");
}

// "A vendor receiving a traceparent request header MUST send it to outgoing
// requests" (participating: same trace id, new parent-id), and "Vendors MUST
// NOT make any other mutations to the traceparent header".
TEST(Traceparent, MustPropagateWithOnlyParentIdUpdated) {
  auto c = extract_w3c(valid);
  ASSERT_TRUE(c);
  simulated_clock clk;
  tracer t({}, nullptr, borrow(clk));
  auto child = t.start_span("x", span_kind::server, &*c);
  EXPECT_EQ(child.context().trace_id, c->trace_id);
  EXPECT_NE(child.context().span_id, c->span_id);
  EXPECT_EQ(child.context().flags, c->flags);
}

// "If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate."
TEST(Traceparent, MustNotParseTracestateWhenTraceparentFails) {
  EXPECT_FALSE(extract_w3c("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "a=b"));
  // And B3 does not rescue a request whose traceparent is invalid.
  carrier_headers h;
  h.traceparent = "garbage";
  h.b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";
  EXPECT_FALSE(extract_context(h));
}

// "failure to parse tracestate MUST NOT affect the parsing of traceparent."
TEST(Traceparent, TracestateFailureMustNotAffectTraceparent) {
  auto c = extract_w3c(valid, "=,UPPER=x,a=,\x01=\x02");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_id.to_hex(), trace_hex);
  EXPECT_EQ(c->trace_state, "");
}

// --- tracestate -------------------------------------------------------------------------------

// "When receiving multiple tracestate header fields, they MUST be combined
// into a single header" (RFC 7230 field order: joined with commas).
TEST(Tracestate, MultipleHeaderFieldsMustBeCombined) {
  http::fields f;
  f.add("traceparent", valid);
  f.add("tracestate", "rojo=00f067aa0ba902b7");
  f.add("Tracestate", "congo=t61rcWkgMzE");
  std::string storage;
  auto c = extract_context(carrier_from_fields(f, storage));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

// "Vendors MUST accept empty tracestate headers"; empty and whitespace-only
// list members are allowed.
TEST(Tracestate, MustAcceptEmptyHeadersAndEmptyMembers) {
  EXPECT_TRUE(parse_tracestate("").empty());
  EXPECT_TRUE(parse_tracestate("   ").empty());
  EXPECT_EQ(normalize_tracestate(" , rojo=1 ,\t, congo=2,"), "rojo=1,congo=2");
}

// "A key MUST begin with a lowercase letter or a digit" (Level 1: a simple
// key with a letter, a tenant id with a letter or digit) and use only the
// allowed characters, at most 256.
TEST(Tracestate, KeyMustBeginWithLowercaseLetterOrDigitAndUseAllowedCharacters) {
  EXPECT_TRUE(valid_tracestate_key("rojo"));
  EXPECT_TRUE(valid_tracestate_key("a0_-*/"));
  EXPECT_TRUE(valid_tracestate_key("1tenant@vendor"));
  EXPECT_TRUE(valid_tracestate_key("fw529a3039@dt"));
  EXPECT_FALSE(valid_tracestate_key("Rojo"));
  EXPECT_FALSE(valid_tracestate_key("_rojo"));
  EXPECT_FALSE(valid_tracestate_key("ro jo"));
  EXPECT_FALSE(valid_tracestate_key("tenant@1vendor"));          // system-id starts with a letter
  EXPECT_FALSE(valid_tracestate_key("tenant@vendorvendor123"));  // system-id at most 14 characters
  EXPECT_FALSE(valid_tracestate_key("a@b@c"));
  EXPECT_FALSE(valid_tracestate_key(""));
  EXPECT_TRUE(valid_tracestate_key(std::string(256, 'a')));
  EXPECT_FALSE(valid_tracestate_key(std::string(257, 'a')));
}

// Values: up to 256 printable ASCII characters except ',' and '=', not ending
// in a space; "all leading spaces MUST be preserved as part of the value".
TEST(Tracestate, ValueGrammarAndLeadingSpacesMustBePreserved) {
  EXPECT_TRUE(valid_tracestate_value("t61rcWkgMzE"));
  EXPECT_TRUE(valid_tracestate_value(" lead"));
  EXPECT_FALSE(valid_tracestate_value("trail "));
  EXPECT_FALSE(valid_tracestate_value("a,b"));
  EXPECT_FALSE(valid_tracestate_value("a=b"));
  EXPECT_FALSE(valid_tracestate_value("tab\there"));
  EXPECT_FALSE(valid_tracestate_value(""));
  EXPECT_TRUE(valid_tracestate_value(std::string(256, 'v')));
  EXPECT_FALSE(valid_tracestate_value(std::string(257, 'v')));
  auto members = parse_tracestate("k= lead  ");  // trailing spaces are OWS
  ASSERT_EQ(members.size(), 1U);
  EXPECT_EQ(members[0].value, " lead");
}

// Invalid entries are dropped, the valid ones kept in order.
TEST(Tracestate, InvalidMembersAreDroppedOthersKeptInOrder) {
  EXPECT_EQ(normalize_tracestate("a=1,BAD=2,b=3,novalue,c=,d=4"), "a=1,b=3,d=4");
}

// "Only one entry per key is allowed": the left-most (most recent) one wins.
TEST(Tracestate, OnlyOneEntryPerKey) {
  EXPECT_EQ(normalize_tracestate("congo=second,rojo=1,congo=first"), "congo=second,rojo=1");
}

// "There can be a maximum of 32 list-members in a list": the right-most go.
TEST(Tracestate, AtMost32ListMembers) {
  std::string header;
  for (int i = 0; i < 40; ++i)
    header += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  auto members = parse_tracestate(header);
  ASSERT_EQ(members.size(), 32U);
  EXPECT_EQ(members.front().key, "k0");
  EXPECT_EQ(members.back().key, "k31");
}

// "the vendor MUST truncate whole entries. Entries larger than 128 characters
// long SHOULD be removed first. Then entries SHOULD be removed starting from
// the end".
TEST(Tracestate, TruncationMustRemoveWholeEntriesLongOnesFirst) {
  std::vector<tracestate_member> members;
  members.push_back({"big", std::string(200, 'x')});
  for (int i = 0; i < 30; ++i) members.push_back({"k" + std::to_string(i), std::string(20, 'v')});
  const std::string out = format_tracestate(members);
  EXPECT_LE(out.size(), tracestate_max_size);
  EXPECT_EQ(out.find("big="), std::string::npos);  // the long one went first
  EXPECT_EQ(out.substr(0, 3), "k0=");              // then from the right: k0 survives
  for (const auto& m : parse_tracestate(out)) EXPECT_EQ(m.value.size(), 20U);  // whole entries
  EXPECT_EQ(out.back(), 'v');
}

// "If the value of the traceparent field wasn't changed before propagation,
// tracestate MUST NOT be modified"; "the order of unmodified key/value pairs
// MUST be preserved": what we received goes on as is (normalized only in
// optional whitespace).
TEST(Tracestate, UnmodifiedTracestateMustBePropagatedInOrder) {
  auto c = extract_w3c(valid, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(c);
  simulated_clock clk;
  tracer t({}, nullptr, borrow(clk));
  auto child = t.start_span("x", span_kind::client, &*c);
  EXPECT_EQ(child.tracestate(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

// --- B3 ---------------------------------------------------------------------------------------

TEST(B3, SingleHeaderForms) {
  auto c = parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_id.to_hex(), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(c->span_id, 0xe457b5a2e4d86bd1ULL);
  EXPECT_TRUE(c->sampled());
  auto c64 = parse_b3_single("64fe8b2a57d3eff7-e457b5a2e4d86bd1");  // 64-bit trace id, deferred
  ASSERT_TRUE(c64);
  EXPECT_EQ(c64->trace_id.high, 0U);
  auto unsampled = parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled());
  EXPECT_TRUE(parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")->sampled());
  EXPECT_FALSE(parse_b3_single("0"));  // sampling decision only: nothing to continue
  EXPECT_FALSE(parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x"));
  EXPECT_FALSE(parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-1"));
  EXPECT_FALSE(parse_b3_single("80F198EE56343BA864FE8B2A57D3EFF7-e457b5a2e4d86bd1-1"));
}

TEST(B3, MultiHeaders) {
  http::fields f;
  f.add("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7");
  f.add("X-B3-SpanId", "e457b5a2e4d86bd1");
  f.add("X-B3-Sampled", "0");
  std::string storage;
  auto c = extract_context(carrier_from_fields(f, storage));
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->sampled());
  EXPECT_TRUE(parse_b3_multi("80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "0", "1")
                  ->sampled());  // debug implies sampled
  EXPECT_FALSE(parse_b3_multi("80f198ee56343ba864fe8b2a57d3eff7", "", "1", ""));
}

TEST(B3, FormatSingle) {
  span_context c;
  c.trace_id = *id128::parse_hex(trace_hex);
  c.span_id = 0x00f067aa0ba902b7ULL;
  c.flags = trace_flag_sampled;
  EXPECT_EQ(format_b3_single(c), "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1");
  EXPECT_EQ(parse_b3_single(format_b3_single(c))->span_id, c.span_id);
}

TEST(Extract, TraceparentWinsOverB3) {
  carrier_headers h;
  h.traceparent = valid;
  h.b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";
  auto c = extract_context(h);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_id.to_hex(), trace_hex);
  EXPECT_TRUE(c->remote);
}

}  // namespace
}  // namespace outrider::tracing
