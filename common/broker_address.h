// A broker address parsed once, from an upstream's or an mqtt sensor's
// `url`, and passed by value to whatever connects (transports, the mqtt
// driver). Thread-safe (pure functions).
#pragma once

#include <string>

#include "common/status.h"

namespace sluice {

struct BrokerAddress {
  std::string scheme = "mqtt";  // as written: mqtt | tcp | mqtts | ssl
  bool tls = false;             // mqtts:// or ssl://
  std::string host;             // name or numeric address; IPv6 without brackets
  int port = 1883;              // 1883 / 8883 when the url names none

  // "scheme://host:port" ("[v6]" in brackets); never holds credentials, so
  // it is safe in logs and errors.
  std::string ToString() const;
  // Paho's form: "tcp://host:port" or "ssl://host:port".
  std::string PahoUri() const;
};

// What is wrong with a url, so that each place that reads one can phrase
// the error its users know (config keys, sensor params).
enum class BrokerUrlError {
  kNone,
  kCredentials,  // user or password in the authority ("mqtt://u:pw@h")
  kScheme,       // not mqtt:// tcp:// mqtts:// ssl://
  kHost,         // empty, holds / ? # space, or a bad [v6] literal
  kPortSyntax,   // ':' not followed by 1..5 digits
  kPortRange,    // 0 or above 65535
};

// Parses "SCHEME://HOST[:PORT][/]" with HOST a name, an IPv4 address or a
// bracketed IPv6 address. Fills *out on kNone. Credentials are checked
// first, so a url holding them is never echoed unredacted by any caller
// that reports it with RedactUrl().
BrokerUrlError ParseBrokerUrl(const std::string& url, BrokerAddress* out);

// The same, with one generic message ("broker url 'R': ...", the url
// redacted) for callers without their own phrasing.
StatusOr<BrokerAddress> ParseBrokerAddress(const std::string& url);

}  // namespace sluice
