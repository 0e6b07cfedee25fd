// posix_file_system: the real disk through POSIX calls (see file_system.h).
#include "io/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fmt/core.h>
#include <string_view>
#include <system_error>

namespace outrider::io {
namespace {

constexpr mode_t file_mode = 0644;
constexpr mode_t dir_mode = 0755;

// Maps an errno value to the catalog: ENOSPC/EDQUOT -> disk_full, ENOENT -> not_found,
// anything else -> io_error; the message names the operation, the path and the OS reason.
error os_error(int err, std::string_view what, const std::string& path) {
  const std::string reason = std::error_code(err, std::generic_category()).message();
  std::string message = fmt::format("{} '{}': {}", what, path, reason);
  switch (err) {
    case ENOSPC:
    case EDQUOT: return error(errc::disk_full, std::move(message));
    case ENOENT: return error(errc::not_found, std::move(message));
    default: return error(errc::io_error, std::move(message));
  }
}

int close_fd(int fd) {
  // close() must not be retried on EINTR on Linux: the descriptor is released either way.
  return ::close(fd);
}

class posix_writable_file final : public writable_file {
 public:
  posix_writable_file(std::string path, int fd, std::uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size), physical_(size) {}
  ~posix_writable_file() override {
    if (fd_ >= 0) close_fd(fd_);
  }
  posix_writable_file(const posix_writable_file&) = delete;
  posix_writable_file& operator=(const posix_writable_file&) = delete;

  status append(std::span<const std::byte> data) override {
    if (fd_ < 0) return closed_error();
    const auto* next = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      // O_APPEND writes go to the end; after preallocate() they go to size_, before the zeros.
      const std::uint64_t at = size_ + (data.size() - left);
      const ssize_t n = positional_ ? ::pwrite(fd_, next, left, static_cast<off_t>(at))
                                    : ::write(fd_, next, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        // Keep "nothing was accepted" true: take back whatever part of `data` reached the file.
        if (left != data.size() && !take_back(at)) size_ += data.size() - left;
        return os_error(err, "write", path_);
      }
      next += n;
      left -= static_cast<std::size_t>(n);
    }
    size_ += data.size();
    physical_ = std::max(physical_, size_);
    return {};
  }

  status preallocate(std::uint64_t end) override {
    if (fd_ < 0) return closed_error();
    if (end <= physical_) return {};
    if (!positional_) {
      // Appends must write before the zeros from now on: O_APPEND would write after them.
      const int flags = ::fcntl(fd_, F_GETFL);
      if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_APPEND) != 0) {
        return os_error(errno, "fcntl", path_);
      }
      positional_ = true;
    }
    static constexpr std::array<std::byte, 64 * 1024> zeros{};
    while (physical_ < end) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), end - physical_));
      const ssize_t w = ::pwrite(fd_, zeros.data(), n, static_cast<off_t>(physical_));
      if (w < 0) {
        if (errno == EINTR) continue;
        return os_error(errno, "write", path_);  // the zeros written so far stay: harmless
      }
      physical_ += static_cast<std::uint64_t>(w);
    }
    return {};
  }

  status sync() override {
    if (fd_ < 0) return closed_error();
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return os_error(errno, "fdatasync", path_);
    }
    return {};
  }

  status truncate(std::uint64_t size) override {
    if (fd_ < 0) return closed_error();
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return os_error(errno, "ftruncate", path_);
    }
    size_ = size;
    physical_ = size;
    return {};
  }

  std::uint64_t size() const override { return size_; }

  void drop_cached(std::uint64_t offset, std::uint64_t length) override {
    if (fd_ < 0 || length == 0) return;
    // Clean pages only: the caller synced them. A failure only leaves them cached.
    (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
                          POSIX_FADV_DONTNEED);
  }

  status close() override {
    if (fd_ < 0) return {};
    const int fd = fd_;
    fd_ = -1;
    if (close_fd(fd) != 0 && errno != EINTR) return os_error(errno, "close", path_);
    return {};
  }

 private:
  error closed_error() const {
    return error(errc::failed_precondition, fmt::format("file '{}' is closed", path_));
  }

  // Undoes a partial append that reached [size_, written_end): zeros again where
  // preallocate() had put zeros, the file cut back where the append grew it. False if
  // that failed (the bytes stay).
  bool take_back(std::uint64_t written_end) {
    if (written_end > physical_ &&
        ::ftruncate(fd_, static_cast<off_t>(std::max(size_, physical_))) != 0) {
      return false;
    }
    static constexpr std::array<std::byte, 64 * 1024> zeros{};
    for (std::uint64_t at = size_; at < std::min(written_end, physical_);) {
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(zeros.size(), std::min(written_end, physical_) - at));
      const ssize_t w = ::pwrite(fd_, zeros.data(), n, static_cast<off_t>(at));
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      at += static_cast<std::uint64_t>(w);
    }
    return true;
  }

  std::string path_;
  int fd_;
  std::uint64_t size_;       // where the next append writes
  std::uint64_t physical_;   // the file's size: size_, or more after preallocate()
  bool positional_ = false;  // O_APPEND cleared by preallocate(); appends use pwrite at size_
};

class posix_readable_file final : public readable_file {
 public:
  posix_readable_file(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~posix_readable_file() override { close_fd(fd_); }
  posix_readable_file(const posix_readable_file&) = delete;
  posix_readable_file& operator=(const posix_readable_file&) = delete;

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error(errno, "pread", path_);
      }
      if (n == 0) break;  // end of file
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  result<std::uint64_t> size() const override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return os_error(errno, "fstat", path_);
    return static_cast<std::uint64_t>(st.st_size);
  }

 private:
  std::string path_;
  int fd_;
};

int open_retrying(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

class posix_fs final : public file_system {
 public:
  result<std::unique_ptr<writable_file>> open_for_append(const std::string& path) override {
    const int fd =
        open_retrying(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, file_mode);
    if (fd < 0) return os_error(errno, "open for append", path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      close_fd(fd);
      return os_error(err, "fstat", path);
    }
    return std::unique_ptr<writable_file>(
        std::make_unique<posix_writable_file>(path, fd, static_cast<std::uint64_t>(st.st_size)));
  }

  result<std::unique_ptr<readable_file>> open_for_read(const std::string& path) override {
    const int fd = open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return os_error(errno, "open for read", path);
    return std::unique_ptr<readable_file>(std::make_unique<posix_readable_file>(path, fd));
  }

  status create_dirs(const std::string& path) override {
    if (path.empty()) return error(errc::invalid_argument, "create_dirs: empty path");
    // Create each prefix in turn; EEXIST is fine as long as it is a directory.
    for (std::size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
      const std::string prefix = pos == std::string::npos ? path : path.substr(0, pos);
      if (!prefix.empty() && ::mkdir(prefix.c_str(), dir_mode) != 0) {
        const int err = errno;
        struct stat st {};
        if (err != EEXIST) return os_error(err, "mkdir", prefix);
        if (::stat(prefix.c_str(), &st) != 0) return os_error(errno, "stat", prefix);
        if (!S_ISDIR(st.st_mode)) return os_error(ENOTDIR, "mkdir", prefix);
      }
      if (pos == std::string::npos) break;
    }
    return {};
  }

  result<std::vector<std::string>> list_dir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return os_error(errno, "opendir", dir);
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      const dirent* entry = ::readdir(d);
      if (entry == nullptr) break;
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return os_error(err, "readdir", dir);
    return names;
  }

  status remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return os_error(errno, "unlink", path);
    return {};
  }

  status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return os_error(errno, fmt::format("rename to '{}' of", to), from);
    }
    return {};
  }

  result<bool> exists(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return os_error(errno, "stat", path);
  }

  result<std::uint64_t> file_size(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return os_error(errno, "stat", path);
    return static_cast<std::uint64_t>(st.st_size);
  }

  status sync_dir(const std::string& dir) override {
    const int fd = open_retrying(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_error(errno, "open directory", dir);
    int rc;
    do {
      rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    const int err = errno;
    close_fd(fd);
    if (rc != 0) return os_error(err, "fsync directory", dir);
    return {};
  }

  result<std::uint64_t> free_space(const std::string& path) override {
    struct statvfs vfs {};
    if (::statvfs(path.c_str(), &vfs) != 0) return os_error(errno, "statvfs", path);
    return static_cast<std::uint64_t>(vfs.f_bavail) * static_cast<std::uint64_t>(vfs.f_frsize);
  }
};

}  // namespace

file_system& posix_file_system() {
  static posix_fs fs;
  return fs;
}

}  // namespace outrider::io
