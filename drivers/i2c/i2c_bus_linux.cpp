#include <fcntl.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "drivers/i2c/i2c_bus.h"

namespace sluice {
namespace {

std::string Hex(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v);
  return buf;
}

class LinuxI2cBus final : public I2cBus {
 public:
  LinuxI2cBus(std::string path, int fd, bool rdwr) : path_(std::move(path)), fd_(fd), rdwr_(rdwr) {}
  ~LinuxI2cBus() override { close(fd_); }

  Status Write(uint8_t address, const uint8_t* data, size_t n) override {
    if (rdwr_) {
      i2c_msg msg{address, 0, static_cast<__u16>(n), const_cast<uint8_t*>(data)};
      return Transfer(address, &msg, 1, "write");
    }
    SLUICE_RETURN_IF_ERROR(SetSlave(address));
    ssize_t w = write(fd_, data, n);
    if (w != static_cast<ssize_t>(n)) return Error(address, "write", w < 0 ? errno : EIO);
    return Status::Ok();
  }

  Status Read(uint8_t address, uint8_t* data, size_t n) override {
    if (rdwr_) {
      i2c_msg msg{address, I2C_M_RD, static_cast<__u16>(n), data};
      return Transfer(address, &msg, 1, "read");
    }
    SLUICE_RETURN_IF_ERROR(SetSlave(address));
    ssize_t r = read(fd_, data, n);
    if (r != static_cast<ssize_t>(n)) return Error(address, "read", r < 0 ? errno : EIO);
    return Status::Ok();
  }

  Status WriteRead(uint8_t address, const uint8_t* wdata, size_t wn, uint8_t* rdata,
                   size_t rn) override {
    if (!rdwr_) {
      SLUICE_RETURN_IF_ERROR(Write(address, wdata, wn));
      return Read(address, rdata, rn);
    }
    i2c_msg msgs[2] = {{address, 0, static_cast<__u16>(wn), const_cast<uint8_t*>(wdata)},
                       {address, I2C_M_RD, static_cast<__u16>(rn), rdata}};
    return Transfer(address, msgs, 2, "write-read");
  }

  const std::string& name() const override { return path_; }

 private:
  Status Transfer(uint8_t address, i2c_msg* msgs, unsigned n, const char* what) {
    i2c_rdwr_ioctl_data data{msgs, n};
    if (ioctl(fd_, I2C_RDWR, &data) < 0) return Error(address, what, errno);
    return Status::Ok();
  }
  Status SetSlave(uint8_t address) {
    if (ioctl(fd_, I2C_SLAVE, static_cast<unsigned long>(address)) < 0) {
      return Error(address, "I2C_SLAVE", errno);
    }
    return Status::Ok();
  }
  Status Error(uint8_t address, const char* what, int err) const {
    std::string m =
        "i2c " + path_ + " address " + Hex(address) + ": " + what + ": " + std::strerror(err);
    if (err == ENXIO || err == EREMOTEIO) m += " (no acknowledge: is the chip at this address?)";
    return IoError(m);
  }

  std::string path_;
  int fd_;
  bool rdwr_;
};

}  // namespace

StatusOr<std::unique_ptr<I2cBus>> OpenLinuxI2cBus(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string m = "i2c: cannot open " + path + ": " + std::strerror(err);
    if (err == EACCES) m += " (add the user to the i2c group)";
    if (err == ENOENT) m += " (is i2c-dev loaded and the bus enabled?)";
    return IoError(m);
  }
  unsigned long funcs = 0;
  if (ioctl(fd, I2C_FUNCS, &funcs) < 0) {
    int err = errno;
    close(fd);
    return IoError("i2c: " + path + " is not an i2c-dev bus (I2C_FUNCS: " + std::strerror(err) +
                   ")");
  }
  return std::unique_ptr<I2cBus>(new LinuxI2cBus(path, fd, (funcs & I2C_FUNC_I2C) != 0));
}

}  // namespace sluice
