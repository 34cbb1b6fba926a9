// Small MQTT helpers shared by the uplink and the mqtt sensor driver.
// Thread-safe (pure functions).
#pragma once

#include <string>

#include "common/status.h"

namespace sluice {

// "refused by the broker: CONNACK rc 5 (not authorized)" for an MQTT 3.1.1
// CONNACK return code.
std::string ConnackReason(int rc);

// strerror(err) for an errno read right after a failed call; for 0 (the
// library said "see errno" but it was lost) a neutral text, never "Success".
std::string SystemErrorText(int err);

// The password in `path` without trailing CR/LF; InvalidArgument
// "password_file 'PATH' cannot be read: WHY" unless `path` is a readable
// regular file (not a directory, FIFO or device) of at most 65,537 bytes.
StatusOr<std::string> ReadPasswordFile(const std::string& path);

}  // namespace sluice
