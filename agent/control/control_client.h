// The client side of sluiced's control socket (agent/control/control_server.h):
// one request line out, one response line back, bounded in time and size.
#pragma once

#include <cstdint>
#include <string>

#include "common/json_parse.h"
#include "common/status.h"

namespace sluice {

// Sends `request` (one JSON object, no newline) to the socket at `path` and
// returns the parsed response. Errors (kUnavailable: the daemon is not
// reachable) carry a message for the operator, e.g. "sluiced is not
// running (no control socket at PATH)". A response {"ok":false,...} comes
// back as kUnavailable with its "error" text. `raw`, if set, receives the
// response line as sent (without the newline).
StatusOr<JsonValue> ControlCall(const std::string& path, const std::string& request,
                                int64_t timeout_us = 5000000, std::string* raw = nullptr);

// The exchange of ControlCall over an already connected socket `fd` (left
// open), `path` naming the daemon in messages. A daemon that closed the
// connection before taking the request (a send fails with EPIPE) is heard
// out: the error line it wrote first ("too many clients") is the result.
StatusOr<JsonValue> ControlExchange(int fd, const std::string& path, const std::string& request,
                                    int64_t timeout_us, std::string* raw = nullptr);

}  // namespace sluice
