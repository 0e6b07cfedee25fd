#include "dev/console.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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
  frame_.clear();
  erase_block_locked();
  const auto it = colors_.find(source);
  const int index = it == colors_.end() ? 0 : it->second;
  if (color_) frame_ += palette[static_cast<std::size_t>(index) % std::size(palette)];
  frame_ += '[';
  frame_ += source;
  frame_ += ']';
  if (color_) frame_ += reset;
  frame_.append(width_ > source.size() ? width_ - source.size() + 1 : 1, ' ');
  frame_ += text;
  if (color_) frame_ += reset;  // an app's unterminated colour must not leak into the next line
  frame_ += '\n';
  draw_block_locked();
  emit_locked();
}

void console::set_status(std::vector<std::string> lines) {
  if (!block_) return;
  std::lock_guard lock(mutex_);
  frame_.clear();
  erase_block_locked();
  status_ = std::move(lines);
  draw_block_locked();
  emit_locked();
}

void console::clear_status() {
  std::lock_guard lock(mutex_);
  frame_.clear();
  erase_block_locked();
  status_.clear();
  emit_locked();
}

void console::emit_locked() {
  // A terminal gets the frame (erase, lines, block) in one write: a stdio stream on a
  // TTY is line-buffered and would write it line by line, so a reader (the terminal, a
  // test on a pseudo-terminal) could see the block erased or half drawn.
  const int fd = block_ ? ::fileno(out_) : -1;
  if (fd < 0) {
    std::fwrite(frame_.data(), 1, frame_.size(), out_);
    std::fflush(out_);
    return;
  }
  std::fflush(out_);  // anything written through the stream before goes first
  std::string_view rest(frame_);
  while (!rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the terminal went away: nothing to show the lines to
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

void console::erase_block_locked() {
  if (drawn_ == 0) return;
  // Up to the block's first line, then clear to the end of the screen.
  frame_ += "\x1b[";
  frame_ += std::to_string(drawn_);
  frame_ += "A\r\x1b[J";
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
    if (color_) frame_ += dim;
    frame_ += text;
    if (color_) frame_ += reset;
    frame_ += '\n';
  };
  for (std::size_t i = 0; i < shown; ++i) draw(status_[i]);
  if (!more.empty()) draw(more);
  drawn_ = shown + (more.empty() ? 0 : 1);
}

}  // namespace outrider::dev
