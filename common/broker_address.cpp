#include "common/broker_address.h"

#include "common/redact_url.h"

namespace sluice {

std::string BrokerAddress::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string BrokerAddress::PahoUri() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "ssl://" : "tcp://") + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

BrokerUrlError ParseBrokerUrl(const std::string& url, BrokerAddress* out) {
  if (UrlHasUserinfo(url)) return BrokerUrlError::kCredentials;
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return BrokerUrlError::kScheme;
  BrokerAddress a;
  a.scheme = url.substr(0, sep);
  if (a.scheme == "mqtts" || a.scheme == "ssl") {
    a.tls = true;
    a.port = 8883;
  } else if (a.scheme != "mqtt" && a.scheme != "tcp") {
    return BrokerUrlError::kScheme;
  }
  std::string rest = url.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string port;
  bool has_port = false;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos || close == 1 ||
        rest.find_first_not_of("0123456789abcdefABCDEF:", 1) != close) {
      return BrokerUrlError::kHost;
    }
    a.host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return BrokerUrlError::kHost;
    has_port = !rest.empty();
    if (has_port) port = rest.substr(1);
  } else {
    const size_t colon = rest.find(':');
    a.host = rest.substr(0, colon);
    has_port = colon != std::string::npos;
    if (has_port) port = rest.substr(colon + 1);
  }
  if (a.host.empty() || a.host.find_first_of("/?#@ \t") != std::string::npos) {
    return BrokerUrlError::kHost;
  }
  if (has_port) {
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
      return BrokerUrlError::kPortSyntax;
    }
    a.port = std::stoi(port);
    if (a.port < 1 || a.port > 65535) return BrokerUrlError::kPortRange;
  }
  *out = a;
  return BrokerUrlError::kNone;
}

StatusOr<BrokerAddress> ParseBrokerAddress(const std::string& url) {
  BrokerAddress a;
  const std::string where = "broker url '" + RedactUrl(url) + "'";
  switch (ParseBrokerUrl(url, &a)) {
    case BrokerUrlError::kNone: return a;
    case BrokerUrlError::kCredentials:
      return InvalidArgument(where + ": put credentials in username/password_file, not the url");
    case BrokerUrlError::kScheme:
      return InvalidArgument(where + ": expected mqtt:// tcp:// mqtts:// or ssl://");
    case BrokerUrlError::kHost: return InvalidArgument(where + ": expected host[:port]");
    case BrokerUrlError::kPortSyntax:
    case BrokerUrlError::kPortRange: return InvalidArgument(where + ": bad port (1..65535)");
  }
  return InvalidArgument(where);
}

}  // namespace sluice
