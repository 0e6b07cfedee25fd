// console: the runner's terminal output. Every process's lines are written
// whole, prefixed "[name] " (padded to the longest name) and, when colour is
// on, coloured per source; on a TTY a status block stays at the bottom: it is
// erased before log lines are written and drawn again below them, and the
// terminal gets each such frame in one write.
//
// Thread-safe: the child readers and the runner write concurrently.
#pragma once

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace outrider::dev {

class console {
 public:
  // `out` stays owned by the caller. `block` enables the status block (a TTY).
  console(std::FILE* out, bool color, bool block);

  // Declares a source so prefixes line up and each gets its own colour.
  void add_source(const std::string& name);
  // Writes one line from `source`.
  void line(const std::string& source, std::string_view text);
  // Replaces the status block (drawn at once when block mode is on; ignored otherwise).
  void set_status(std::vector<std::string> lines);
  // Erases the block for good (at exit).
  void clear_status();

  bool color() const noexcept { return color_; }

  // True when colour should be used for `fd`: a TTY and NO_COLOR unset or empty.
  static bool color_wanted(int fd);
  // Columns of the terminal on `fd` (80 when unknown).
  static int terminal_width(int fd);
  // Rows of the terminal on `fd` (24 when unknown).
  static int terminal_height(int fd);
  // The longest prefix of `text` that fills at most `columns` columns: whole
  // UTF-8 characters, one column each (a cut never splits a character).
  static std::string_view fit_columns(std::string_view text, std::size_t columns);

 private:
  // Append to frame_: the cursor-up and erase of the block on screen; the block.
  void erase_block_locked();
  void draw_block_locked();
  // Writes frame_ (on a terminal in one write(2)).
  void emit_locked();

  std::FILE* out_;
  bool color_;
  bool block_;
  std::mutex mutex_;
  std::map<std::string, int> colors_;  // source -> palette index
  std::size_t width_ = 0;              // longest source name
  std::vector<std::string> status_;
  std::size_t drawn_ = 0;  // lines of the block on screen
  std::string frame_;      // what one call writes, built whole first
};

}  // namespace outrider::dev
