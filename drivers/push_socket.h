// Socket plumbing for the push driver (internal to drivers/).
#pragma once

#include "common/status.h"
#include "drivers/push.h"

namespace sluice {

struct OpenedListener {
  int fd = -1;
  int port = 0;               // bound TCP/UDP port
  bool created_file = false;  // a unix socket file to remove on stop
};

// Creates, binds (and for streams, listens on) a non-blocking, close-on-exec
// socket for `address`. Unix sockets: creates missing parent directories,
// replaces a stale socket file, refuses a live one or a non-socket file,
// chmods the socket 0660.
StatusOr<OpenedListener> OpenListener(const ListenAddress& address);

}  // namespace sluice
