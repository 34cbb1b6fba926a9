#include "modbus_server.h"

#include <modbus.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice {
namespace testing {

ModbusTestServer::ModbusTestServer(int port) : rtu_(false), port_(port), master_fd_(-1), unit_(1) {
  map_ = modbus_mapping_new(kSize, kSize, kSize, kSize);
}

ModbusTestServer::ModbusTestServer(int master_fd, int unit)
    : rtu_(true), port_(0), master_fd_(master_fd), unit_(unit) {
  map_ = modbus_mapping_new(kSize, kSize, kSize, kSize);
}

ModbusTestServer::~ModbusTestServer() {
  Stop();
  modbus_mapping_free(map_);
}

bool ModbusTestServer::Start(std::string* error) {
  Stop();
  stop_ = false;
  if (rtu_) {
    // The pty master needs no termios; libmodbus reads and writes ctx->s.
    ctx_ = modbus_new_rtu("/dev/null", 9600, 'N', 8, 1);
    if (ctx_ == nullptr) {
      *error = std::string("modbus_new_rtu: ") + modbus_strerror(errno);
      return false;
    }
    modbus_set_slave(ctx_, unit_);
    if (getenv("MB_DEBUG")) modbus_set_debug(ctx_, 1);
    modbus_set_socket(ctx_, master_fd_);
  } else {
    ctx_ = modbus_new_tcp("127.0.0.1", port_);
    if (ctx_ == nullptr) {
      *error = std::string("modbus_new_tcp: ") + modbus_strerror(errno);
      return false;
    }
    listen_fd_ = modbus_tcp_listen(ctx_, 4);
    if (listen_fd_ < 0) {
      *error = std::string("modbus_tcp_listen: ") + modbus_strerror(errno);
      modbus_free(ctx_);
      ctx_ = nullptr;
      return false;
    }
  }
  thread_ = std::thread([this] { Loop(); });
  return true;
}

void ModbusTestServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  for (int fd : clients_) close(fd);
  clients_.clear();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  // Never modbus_close(): the sockets are ours (and the pty master the test's).
  if (ctx_ != nullptr) modbus_free(ctx_);
  ctx_ = nullptr;
}

void ModbusTestServer::Loop() {
  std::vector<uint8_t> query(MODBUS_MAX_ADU_LENGTH);
  for (int round = 0; !stop_ && round < 10000000; ++round) {
    std::vector<pollfd> fds;
    if (rtu_) fds.push_back({master_fd_, POLLIN, 0});
    if (listen_fd_ >= 0) fds.push_back({listen_fd_, POLLIN, 0});
    for (int c : clients_) fds.push_back({c, POLLIN, 0});
    int n = poll(fds.data(), fds.size(), 20);
    if (n <= 0) continue;
    for (const pollfd& p : fds) {
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      if (rtu_ && (p.revents & POLLIN) == 0) {  // no slave side open: wait for one
        usleep(10000);
        continue;
      }
      if (p.fd == listen_fd_) {
        int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          clients_.push_back(c);
          ++accepts_;
        }
        continue;
      }
      modbus_set_socket(ctx_, p.fd);
      int rc = modbus_receive(ctx_, query.data());
      if (rc > 0 && !rtu_ && bad_length_ && rc >= 12 && query[7] == 3) {
        ++requests_;
        // Header with length 65535, the right PDU, then stray bytes.
        int addr = query[8] << 8 | query[9], n = query[10] << 8 | query[11];
        std::vector<uint8_t> rsp = {query[0], query[1], 0, 0, 0xff, 0xff, query[6], 3,
                                    static_cast<uint8_t>(2 * n)};
        {
          std::lock_guard<std::mutex> lock(map_mu_);
          for (int i = 0; i < n && addr + i < kSize; ++i) {
            rsp.push_back(static_cast<uint8_t>(map_->tab_registers[addr + i] >> 8));
            rsp.push_back(static_cast<uint8_t>(map_->tab_registers[addr + i]));
          }
        }
        rsp.insert(rsp.end(), static_cast<size_t>(bad_extra_.load()), 0x5a);
        if (send(p.fd, rsp.data(), rsp.size(), MSG_NOSIGNAL) < 0) {
          close(p.fd);
          clients_.erase(std::find(clients_.begin(), clients_.end(), p.fd));
        }
      } else if (rc > 0) {
        ++requests_;
        std::lock_guard<std::mutex> lock(map_mu_);
        modbus_reply(ctx_, query.data(), rc, map_);
      } else if (rc == 0 && rtu_) {
        // A request for another unit. libmodbus then expects that unit's
        // response and would swallow our next request as it; on this
        // two-party pty nobody answers, so start a fresh context instead.
        modbus_free(ctx_);
        ctx_ = modbus_new_rtu("/dev/null", 9600, 'N', 8, 1);
        modbus_set_slave(ctx_, unit_);
        modbus_set_socket(ctx_, master_fd_);
      } else if (rc < 0 && !rtu_) {
        close(p.fd);
        clients_.erase(std::find(clients_.begin(), clients_.end(), p.fd));
      }
    }
  }
}

void ModbusTestServer::SetHolding(int address, const std::vector<uint16_t>& regs) {
  std::lock_guard<std::mutex> lock(map_mu_);
  for (size_t i = 0; i < regs.size(); ++i) map_->tab_registers[address + i] = regs[i];
}

void ModbusTestServer::SetInput(int address, const std::vector<uint16_t>& regs) {
  std::lock_guard<std::mutex> lock(map_mu_);
  for (size_t i = 0; i < regs.size(); ++i) map_->tab_input_registers[address + i] = regs[i];
}

void ModbusTestServer::SetCoil(int address, bool on) {
  std::lock_guard<std::mutex> lock(map_mu_);
  map_->tab_bits[address] = on ? 1 : 0;
}

void ModbusTestServer::SetDiscrete(int address, bool on) {
  std::lock_guard<std::mutex> lock(map_mu_);
  map_->tab_input_bits[address] = on ? 1 : 0;
}

}  // namespace testing
}  // namespace sluice
