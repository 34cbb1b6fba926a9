#include "tests/agent/certs.h"

#include <sys/wait.h>

#include "tests/support/process.h"
#include "tests/support/support.h"

namespace sluice {
namespace testing {
namespace {

constexpr const char* kOpenssl = "/usr/bin/openssl";

// One config for every step: the request's DN comes from -subj, the
// extensions from the named section.
constexpr const char* kConfig = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[v3_server_wrong_host]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:broker.invalid
authorityKeyIdentifier = keyid
[v3_client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
)";

struct Maker {
  std::string dir;
  std::string config;
  std::string log;
  int serial = 1;

  std::string Path(const std::string& name) const { return dir + "/" + name; }

  bool Ca(const std::string& name, const std::string& cn, std::string* error) {
    return RunTool({kOpenssl, "req", "-x509", "-config", config, "-extensions", "v3_ca",
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", "/CN=" + cn, "-days", "2", "-keyout", Path(name + ".key"), "-out",
                    Path(name + ".crt")},
                   log, error);
  }

  // A key and a certificate signed by CA `ca` with extensions `section`.
  bool Leaf(const std::string& name, const std::string& cn, const std::string& ca,
            const std::string& section, CertPair* out, std::string* error) {
    const std::string csr = Path(name + ".csr");
    out->cert = Path(name + ".crt");
    out->key = Path(name + ".key");
    return RunTool({kOpenssl, "req", "-new", "-config", config, "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=" + cn, "-keyout",
                    out->key, "-out", csr},
                   log, error) &&
           RunTool({kOpenssl, "x509", "-req", "-in", csr, "-CA", Path(ca + ".crt"), "-CAkey",
                    Path(ca + ".key"), "-set_serial", std::to_string(++serial), "-days", "2",
                    "-extfile", config, "-extensions", section, "-out", out->cert},
                   log, error);
  }
};

}  // namespace

bool RunTool(const std::vector<std::string>& argv, const std::string& log_path,
             std::string* error, int64_t timeout_us) {
  auto describe = [&] {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return cmd;
  };
  WriteFile(log_path, "");  // Process appends: keep only this run's output
  Process p;
  Process::Options o;
  o.argv = argv;
  o.stdout_path = log_path;
  o.stderr_path = log_path;
  std::string perr;
  if (!p.Start(o, &perr)) {
    if (error) *error = describe() + ": " + perr;
    return false;
  }
  auto st = p.Wait(timeout_us);
  if (!st) {
    p.Terminate(1000000);
    if (error) *error = describe() + ": timed out";
    return false;
  }
  if (!WIFEXITED(*st) || WEXITSTATUS(*st) != 0) {
    if (error) *error = describe() + ": " + DescribeWaitStatus(*st) + ": " + ReadFile(log_path);
    return false;
  }
  return true;
}

bool MakeTestPki(const std::string& dir, TestPki* pki, std::string* error) {
  Maker m;
  m.dir = dir;
  m.config = dir + "/openssl.cnf";
  m.log = dir + "/openssl.log";
  if (!WriteFile(m.config, kConfig)) {
    if (error) *error = "cannot write " + m.config;
    return false;
  }
  if (!m.Ca("ca", "Sluice Test CA", error) || !m.Ca("other_ca", "Unrelated Test CA", error)) {
    return false;
  }
  pki->ca = m.Path("ca.crt");
  pki->other_ca = m.Path("other_ca.crt");
  return m.Leaf("server", "localhost", "ca", "v3_server", &pki->server, error) &&
         m.Leaf("server_other_ca", "localhost", "other_ca", "v3_server",
                &pki->server_other_ca, error) &&
         m.Leaf("server_wrong_host", "broker.invalid", "ca", "v3_server_wrong_host",
                &pki->server_wrong_host, error) &&
         m.Leaf("client", "gw-tls", "ca", "v3_client", &pki->client, error) &&
         m.Leaf("client_other_ca", "gw-tls", "other_ca", "v3_client", &pki->client_other_ca,
                error);
}

}  // namespace testing
}  // namespace sluice
