// The socket half of the OS seam: binding listeners. Every socket returned
// is non-blocking and close-on-exec. Thread-safe (no shared state; no umask
// games).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <string>

#include "common/fs.h"
#include "common/status.h"

namespace sluice {

// The longest path a unix socket address holds (sun_path minus its NUL).
size_t MaxUnixSocketPath();

// True if something accepts connections (or datagrams, for `type`
// SOCK_DGRAM) on the unix socket at `path`. A listener whose backlog is
// full counts as alive.
bool UnixSocketAnswers(const std::string& path, int type = SOCK_STREAM);

struct BoundUnixSocket {
  UniqueFd fd;
  bool replaced_stale = false;  // a dead socket file was removed first
  // The socket file's identity, so its owner removes only its own file.
  dev_t dev = 0;
  ino_t ino = 0;
};

// Binds a unix socket of `type` (SOCK_STREAM: also listens with `backlog`;
// SOCK_DGRAM) at `path` whose file has exactly `mode`.
// - Nothing at `path`: bound there. The parent directory must exist.
// - A socket file nobody answers on (left by a crash): removed, replaced.
// - A socket somebody answers on: kUnavailable "address in use: another
//   process listens on PATH"; left alone.
// - Anything else (a regular file, a directory, a symlink): kInvalidArgument
//   "PATH exists and is not a socket; not replacing it"; left alone.
// The file is never wider than `mode`, whatever the umask: the socket's own
// inode gets `mode` before bind() (Linux creates the file with that mode
// minus the umask), then the file is chmod-ed to exactly `mode` before
// listen(), so nobody outside `mode` can connect at any moment.
// Other errors are kIoError naming the step ("bind PATH: ...").
[[nodiscard]] StatusOr<BoundUnixSocket> BindUnix(const std::string& path, mode_t mode,
                                                 int type, int backlog);

struct BoundInetSocket {
  UniqueFd fd;
  int port = 0;  // the bound port (the kernel's choice for port 0)
};

// Binds a TCP (SOCK_STREAM, listening with `backlog`, SO_REUSEADDR) or UDP
// (SOCK_DGRAM) socket to the numeric IPv4 or IPv6 address `host` (IPv6
// without brackets) and `port`. kInvalidArgument if `host` is not numeric;
// kIoError naming the step otherwise.
[[nodiscard]] StatusOr<BoundInetSocket> BindInet(const std::string& host, int port, int type,
                                                 int backlog);

}  // namespace sluice
