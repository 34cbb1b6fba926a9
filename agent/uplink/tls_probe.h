// Why a TLS connection to a broker is refused, asked of OpenSSL directly.
// Paho reports a host name mismatch, and a broker rejecting the client
// certificate after the handshake (TLS 1.3), only as "TCP/TLS connect
// failure"; libmosquitto names them. The Paho transport runs this probe
// after such a failure so that both clients report the same reasons.
#pragma once

#include <string>

#include "agent/uplink/transport.h"
#include "common/broker_address.h"

namespace sluice {

// One TCP connect and TLS handshake to `broker`, trusting and presenting
// what `tls` names (no ca_file: the system's default trust store, which
// SSL_CERT_FILE / SSL_CERT_DIR override) and verifying the chain and the
// host name if tls.verify; then up to timeout_ms for the broker's alert.
// Returns the reason in the words libmosquitto uses:
//   "host name verification failed (certificate verify failed: hostname mismatch)"
//   "certificate verify failed: unable to get local issuer certificate"
//   "error:0A00045C:SSL routines::tlsv13 alert certificate required"
//   "TLS connection closed by the broker before CONNACK, no TLS alert received
//    (a broker rejecting the client certificate does this)"
// or "" if the broker took the handshake and said nothing (or could not be
// reached: the TCP probe names that). Blocking, bounded by ~2 x timeout_ms.
std::string ProbeTlsRefusal(const BrokerAddress& broker, const TlsOptions& tls, int timeout_ms);

}  // namespace sluice
