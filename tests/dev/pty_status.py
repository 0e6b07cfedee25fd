#!/usr/bin/env python3
"""`outrider dev` on a pseudo-terminal: the status block as a real terminal shows it.

    pty_status.py <outrider binary> <outrider.yaml> [--columns N] [--rows N] [--seconds S]

Runs `outrider dev -f <outrider.yaml>` on a pty (as a terminal would: its own session, the pty
as controlling terminal, TERM=xterm), lets it run until every app started plus S seconds, types
Ctrl-C, and reads until it exits. The output goes through a small terminal model (cursor
movement, erase, wrapping at the width; colours ignored) and these are checked:
  - while running, the status block ("outrider dev ..." header) is on screen exactly once, as
    the last lines, below the log lines; no status line wraps;
  - Ctrl-C stops the runner with exit code 0 and every process's stop is logged;
  - at exit the block is gone and nothing of it was left behind in the scrollback;
  - no escape sequence other than colour, cursor up and erase is used.
Prints the final screen and one line per check; exit 0 when all pass.
"""
import argparse
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time


class Terminal:
    """Scrollback plus cursor: enough of a VT100 for the runner's output."""

    def __init__(self, columns, rows):
        self.columns = columns
        self.rows = rows
        self.bottom = 0  # the lowest row written: the screen shows rows bottom-rows+1 .. bottom
        self.lines = [[]]
        self.row = 0
        self.col = 0
        self.unknown = []
        self.pending = ""  # an escape sequence split across reads

    def _line(self):
        while len(self.lines) <= self.row:
            self.lines.append([])
        self.bottom = max(self.bottom, self.row)
        return self.lines[self.row]

    def put(self, ch):
        if self.col >= self.columns:  # autowrap
            self.row += 1
            self.col = 0
        line = self._line()
        while len(line) < self.col:
            line.append(" ")
        if self.col < len(line):
            line[self.col] = ch
        else:
            line.append(ch)
        self.col += 1

    def feed(self, text):
        text = self.pending + text
        self.pending = ""
        i = 0
        while i < len(text):
            c = text[i]
            if c == "\x1b":
                m = re.match(r"\x1b\[([0-9;?]*)([A-Za-z])", text[i:])
                if not m:
                    if len(text) - i < 16:
                        self.pending = text[i:]
                        return
                    self.unknown.append(repr(text[i : i + 8]))
                    i += 1
                    continue
                args, op = m.group(1), m.group(2)
                n = int(args) if args.isdigit() else 1
                if op == "m":
                    pass
                elif op == "A":  # a terminal cannot move above the top of its screen
                    self.row = max(0, self.bottom - self.rows + 1, self.row - n)
                elif op == "J" and args in ("", "0"):
                    self.lines[self.row] = self._line()[: self.col]
                    del self.lines[self.row + 1 :]
                    self.bottom = self.row
                elif op == "K" and args in ("", "0"):
                    self.lines[self.row] = self._line()[: self.col]
                else:
                    self.unknown.append(repr(m.group(0)))
                i += len(m.group(0))
                continue
            if c == "\n":
                self.row += 1
                self._line()
            elif c == "\r":
                self.col = 0
            elif c == "\b":
                self.col = max(0, self.col - 1)
            elif c == "\t":
                self.col = min(self.columns - 1, (self.col // 8 + 1) * 8)
            elif c >= " ":
                self.put(c)
            i += 1

    def text(self):
        out = ["".join(l).rstrip() for l in self.lines]
        while out and not out[-1]:
            out.pop()
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("config")
    ap.add_argument("--columns", type=int, default=120)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--start-timeout", type=float, default=180)
    a = ap.parse_args()

    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.environ.pop("NO_COLOR", None)
        os.chdir(os.path.dirname(os.path.abspath(a.config)))
        os.execv(a.binary, [a.binary, "dev", "-f", a.config])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", a.rows, a.columns, 0, 0))

    term = Terminal(a.columns, a.rows)
    raw = []

    def pump(until, stop=lambda: False):
        while time.time() < until and not stop():
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child side closed
                return False
            if not data:
                return False
            raw.append(data)
            term.feed(data.decode("utf-8", errors="replace"))
        return True

    failures = 0

    def check(ok, what):
        nonlocal failures
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            failures += 1

    started = lambda: "app(s) started" in "\n".join(term.text())
    alive = pump(time.time() + a.start_timeout, started)
    check(alive and started(), "the system started")
    pump(time.time() + a.seconds)  # several status redraws between log lines

    screen = term.text()
    heads = [i for i, l in enumerate(screen) if l.startswith("outrider dev") and "APP" not in l]
    check(len(heads) == 1, f"one status block on screen while running (found {len(heads)} headers)")
    if heads:
        block = screen[heads[0] :]
        check(len(block) >= 3 and block[1].lstrip().startswith("APP"), "the block is the last lines: header, columns, one line per app")
        check(all(len(l) < a.columns for l in block), f"no status line reaches the width ({a.columns} columns)")
    running_screen = screen

    os.write(fd, b"\x03")  # Ctrl-C as typed: the line discipline sends SIGINT to the foreground group
    pump(time.time() + 120)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    check(code == 0, f"Ctrl-C stops the runner with exit code 0 (got {code})")
    final = term.text()
    check(any(re.search(r"\bstopped$", l) for l in final), "the runner says it stopped")
    leftover = [l for l in final if l.startswith("outrider dev") or l.lstrip().startswith("APP ")]
    check(not leftover, f"no status block left behind ({len(leftover)} block lines in the scrollback)")
    check(not term.unknown, f"only colour, cursor-up and erase sequences ({term.unknown[:5]})")

    print("---- screen while running (last 15 lines) ----")
    print("\n".join(running_screen[-15:]))
    print("---- final screen (last 25 lines) ----")
    print("\n".join(final[-25:]))
    print("all checks passed" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
