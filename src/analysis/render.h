// Human forms of the analysis for `outrider analyze`: plain text for a
// terminal and Markdown for a pull request or a wiki page. Both show the
// window, the ranked findings, the entry points by score, the cycles and the
// service graph.
#pragma once

#include <string>

#include "analysis/analysis.h"

namespace outrider::analysis {

std::string render_text(const analysis_result& a);
std::string render_markdown(const analysis_result& a);

}  // namespace outrider::analysis
