// See tls_probe.h. Built with the Paho transport only (it is its only user).
#include "agent/uplink/tls_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace sluice {
namespace {

// A blocking TCP socket to `broker` with send/receive timeouts, or -1.
int ConnectWithTimeouts(const BrokerAddress& broker, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(broker.host.c_str(), std::to_string(broker.port).c_str(), &hints, &res) != 0) {
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    bool ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      ok = poll(&p, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
           err == 0;
    }
    if (!ok) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return -1;
  const int flags = fcntl(fd, F_GETFL);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The first error in OpenSSL's queue ("error:0A00045C:SSL routines::..."), or "".
std::string OpenSslError() {
  const unsigned long e = ERR_peek_error();
  if (e == 0) return "";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char addr[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), addr) == 1 || inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

}  // namespace

std::string ProbeTlsRefusal(const BrokerAddress& broker, const TlsOptions& tls, int timeout_ms) {
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return "";
  ERR_clear_error();
  const bool trusted = tls.ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx.get()) == 1
                           : SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(),
                                                           nullptr) == 1;
  if (!trusted) return "cannot load the trusted CAs: " + OpenSslError();
  if (!tls.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
    return "cannot load cert_file/key_file: " + OpenSslError();
  }
  SSL_CTX_set_verify(ctx.get(), tls.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (!ssl) return "";
  const bool ip = IsIpLiteral(broker.host);
  if (!ip) SSL_set_tlsext_host_name(ssl.get(), broker.host.c_str());
  if (tls.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, broker.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, broker.host.c_str(), 0);
    }
  }
  const int fd = ConnectWithTimeouts(broker, timeout_ms);
  if (fd < 0) return "";
  SSL_set_fd(ssl.get(), fd);
  std::string why;
  ERR_clear_error();
  if (SSL_connect(ssl.get()) != 1) {
    const long v = SSL_get_verify_result(ssl.get());
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      why = std::string("host name verification failed (certificate verify failed: ") +
            X509_verify_cert_error_string(v) + ")";
    } else if (v != X509_V_OK) {
      why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    } else {
      why = OpenSslError();
      if (why.empty()) why = "TLS handshake failed";
    }
  } else {
    // With TLS 1.3 the broker judges our certificate after our side of the
    // handshake: its verdict comes with the first read.
    char byte;
    const int n = SSL_read(ssl.get(), &byte, 1);
    const int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl.get(), n);
    if (e == SSL_ERROR_SSL) {
      why = OpenSslError();
    } else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno != EAGAIN &&
                                             errno != EWOULDBLOCK)) {
      why = "TLS connection closed by the broker before CONNACK, no TLS alert received "
            "(a broker rejecting the client certificate does this)";
    }
    // Else it waits for our CONNECT: TLS is not the problem.
  }
  ERR_clear_error();
  close(fd);  // SSL_free below does not close it
  return why;
}

}  // namespace sluice
