// gzip bodies (Content-Encoding: gzip) through zlib.
#include <climits>
#include <zlib.h>

#include "tracing/codec.h"

namespace outrider::tracing {
namespace {

// windowBits 15 plus 32: detect gzip or zlib headers automatically; plus 16: write gzip.
constexpr int inflate_auto_header = 15 + 32;
constexpr int deflate_gzip_header = 15 + 16;
constexpr int deflate_memory_level = 8;
constexpr std::size_t chunk_bytes = 64 * 1024;

}  // namespace

result<std::string> gunzip(std::string_view body, std::size_t max_output_bytes) {
  if (body.size() > UINT_MAX) return error(errc::body_too_large, "compressed body too large");
  z_stream zs{};
  if (inflateInit2(&zs, inflate_auto_header) != Z_OK)
    return error(errc::internal, "inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  zs.avail_in = static_cast<uInt>(body.size());
  std::string out;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    const std::size_t used = out.size();
    if (used >= max_output_bytes) {
      inflateEnd(&zs);
      return error(errc::body_too_large, "decompressed body exceeds the limit of " +
                                             std::to_string(max_output_bytes) + " bytes");
    }
    const std::size_t room = std::min(chunk_bytes, max_output_bytes - used);
    out.resize(used + room);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs.avail_out = static_cast<uInt>(room);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(used + (room - zs.avail_out));
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) {
      // Z_BUF_ERROR with no input left: the stream ended early.
      std::string why =
          zs.msg != nullptr ? zs.msg : (rc == Z_BUF_ERROR ? "truncated stream" : "corrupt stream");
      inflateEnd(&zs);
      return error(errc::malformed_request, "gzip body: " + why);
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return error(errc::malformed_request, "gzip body: truncated stream");
    }
  }
  inflateEnd(&zs);
  return out;
}

std::string gzip(std::string_view data, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, deflate_gzip_header, deflate_memory_level,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace outrider::tracing
