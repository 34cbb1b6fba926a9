// Credentials never reach a message: URLs are redacted before they are
// logged or echoed in an error. Thread-safe (pure functions).
#pragma once

#include <string>

namespace sluice {

// The url with any user:password@ part replaced by "***@", for logs and
// errors ("mqtt://u:pw@h:1883" -> "mqtt://***@h:1883"). The userinfo ends at
// the last '@' before the path, so a password holding '@' is hidden whole.
std::string RedactUrl(const std::string& url);

// True if the url's authority holds a user or password ("...//user@host").
bool UrlHasUserinfo(const std::string& url);

}  // namespace sluice
