// A throwaway PKI for TLS tests, made with the `openssl` CLI (EC P-256
// keys, valid for two days) inside a test's own directory: two unrelated
// CAs, server certificates and a client certificate. Every openssl run is
// a child process stopped by PID and bounded in time.
#pragma once

#include <string>
#include <vector>

namespace sluice {
namespace testing {

// A certificate and its private key (PEM files).
struct CertPair {
  std::string cert;
  std::string key;
};

struct TestPki {
  std::string ca;              // the CA the uplink is told to trust
  std::string other_ca;        // an unrelated CA
  CertPair server;             // by `ca`; SAN IP:127.0.0.1, DNS:localhost
  CertPair server_other_ca;    // by `other_ca`; same SANs
  CertPair server_wrong_host;  // by `ca`; SAN DNS:broker.invalid only
  CertPair client;             // by `ca`; clientAuth
  CertPair client_other_ca;    // by `other_ca`; clientAuth
};

// Creates every file of TestPki under `dir`. False with *error (openssl's
// own output) on failure.
bool MakeTestPki(const std::string& dir, TestPki* pki, std::string* error);

// Runs a program to completion (at most timeout_us; killed by PID
// otherwise) with stdout and stderr to `log_path`. True on exit status 0;
// otherwise *error holds the command and its output.
bool RunTool(const std::vector<std::string>& argv, const std::string& log_path,
             std::string* error, int64_t timeout_us = 20000000);

}  // namespace testing
}  // namespace sluice
