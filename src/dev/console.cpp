#include "dev/console.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace outrider::dev {
namespace {

// ANSI foreground colours, bright first, for the sources in order.
constexpr const char* palette[] = {"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m",
                                   "\x1b[96m", "\x1b[93m", "\x1b[92m", "\x1b[95m", "\x1b[94m"};
constexpr const char* reset = "\x1b[0m";
constexpr const char* dim = "\x1b[2m";
constexpr int default_width = 80;
constexpr int default_height = 24;

}  // namespace

console::console(std::FILE* out, bool color, bool block)
    : out_(out), color_(color), block_(block) {}

bool console::color_wanted(int fd) {
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && *no_color != '\0') return false;
  return ::isatty(fd) == 1;
}

std::string_view console::fit_columns(std::string_view text, std::size_t columns) {
  std::size_t used = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    // A byte 10xxxxxx continues the character before it; any other byte starts one.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (used == columns) return text.substr(0, i);
    ++used;
  }
  return text;
}

int console::terminal_width(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return default_width;
}

int console::terminal_height(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  return default_height;
}

void console::add_source(const std::string& name) {
  std::lock_guard lock(mutex_);
  if (colors_.count(name) == 0) {
    const int index = static_cast<int>(colors_.size());
    colors_[name] = index;
  }
  width_ = std::max(width_, name.size());
}

void console::line(const std::string& source, std::string_view text) {
  std::lock_guard lock(mutex_);
  erase_block_locked();
  std::string out;
  out.reserve(text.size() + width_ + 16);
  const auto it = colors_.find(source);
  const int index = it == colors_.end() ? 0 : it->second;
  if (color_) out += palette[static_cast<std::size_t>(index) % std::size(palette)];
  out += '[';
  out += source;
  out += ']';
  if (color_) out += reset;
  out.append(width_ > source.size() ? width_ - source.size() + 1 : 1, ' ');
  out += text;
  if (color_) out += reset;  // an app's unterminated colour must not leak into the next line
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), out_);
  draw_block_locked();
  std::fflush(out_);
}

void console::set_status(std::vector<std::string> lines) {
  if (!block_) return;
  std::lock_guard lock(mutex_);
  erase_block_locked();
  status_ = std::move(lines);
  draw_block_locked();
  std::fflush(out_);
}

void console::clear_status() {
  std::lock_guard lock(mutex_);
  erase_block_locked();
  status_.clear();
  std::fflush(out_);
}

void console::erase_block_locked() {
  if (drawn_ == 0) return;
  // Up to the block's first line, then clear to the end of the screen.
  std::fprintf(out_, "\x1b[%zuA\r\x1b[J", drawn_);
  drawn_ = 0;
}

void console::draw_block_locked() {
  if (!block_ || status_.empty()) return;
  // A wrapped line would break the cursor arithmetic: cut at the width. A block taller than the
  // screen would too (the cursor cannot move above the top line): keep one line for the cursor
  // and one for the log, and say how many lines were left out.
  const int fd = ::fileno(out_);
  const auto columns = static_cast<std::size_t>(std::max(terminal_width(fd) - 1, 1));
  const auto room = static_cast<std::size_t>(std::max(terminal_height(fd) - 2, 1));
  std::size_t shown = status_.size();
  std::string more;
  if (shown > room) {
    shown = room - 1;
    more = "  ... " + std::to_string(status_.size() - shown) + " more line(s): outrider dev status";
  }
  auto draw = [&](std::string_view l) {
    const std::string_view text = fit_columns(l, columns);
    if (color_) std::fputs(dim, out_);
    std::fwrite(text.data(), 1, text.size(), out_);
    if (color_) std::fputs(reset, out_);
    std::fputc('\n', out_);
  };
  for (std::size_t i = 0; i < shown; ++i) draw(status_[i]);
  if (!more.empty()) draw(more);
  drawn_ = shown + (more.empty() ? 0 : 1);
}

}  // namespace outrider::dev
