// JSON forms of the service graph and the coupling report: the bodies of
// GET /api/outrider/v1/graph and GET /api/outrider/v1/analysis (docs/analysis.md
// lists every field), and their parsers (for `outrider analyze --collector`).
#pragma once

#include <string>
#include <string_view>

#include "analysis/analysis.h"
#include "base/result.h"

namespace outrider::analysis {

// {"nodes":[{"service","spans","errors"}],"edges":[{"from","to","kind","calls","errors","p50Ms","p99Ms"}]}
std::string to_json(const service_graph& g);
// {"window":{"startMs","endMs"},"traces","truncated","entryPoints":[...],"findings":[...],"cycles":[...]}
std::string to_json(const report& r);
// Both in one object: the report's fields plus "graph" (`outrider analyze --format json`).
std::string to_json(const analysis_result& a);

// Parsers of the above. Errors: invalid_argument naming what is wrong.
result<service_graph> parse_graph_json(std::string_view text);
result<report> parse_report_json(std::string_view text);

}  // namespace outrider::analysis
