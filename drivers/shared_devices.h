// Devices that several sensors share -- a Modbus link, an I2C chip, a serial
// port, a command's runs -- found by a key naming the device. One registry
// per daemon (DriverContext::devices), so two daemons in one process (tests)
// never share a device. The registry holds weak references: a device lives
// while a driver holds it, and a later sensor with the same key gets a new
// one once every holder is gone.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <typeindex>
#include <utility>

#include "common/status.h"

namespace sluice {

class SharedDevices {
 public:
  SharedDevices() = default;
  SharedDevices(const SharedDevices&) = delete;
  SharedDevices& operator=(const SharedDevices&) = delete;

  // The live device of type T under `key` if `compatible(const T&)` (a
  // Status) accepts it, else that error; with none live, the device `make()`
  // returns (a std::shared_ptr<T>), now registered under `key`. Keys of
  // different types never meet. `make` and `compatible` run under the
  // registry's lock: they must not block or call back into the registry.
  template <typename T, typename Make, typename Compatible>
  StatusOr<std::shared_ptr<T>> Acquire(const std::string& key, Make make, Compatible compatible) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = devices_.begin(); it != devices_.end();) {
      it = it->second.expired() ? devices_.erase(it) : std::next(it);
    }
    std::weak_ptr<void>& slot = devices_[{std::type_index(typeid(T)), key}];
    if (std::shared_ptr<void> live = slot.lock()) {
      // The slot's type is T: the key holds T's type_index.
      std::shared_ptr<T> device = std::static_pointer_cast<T>(live);
      SLUICE_RETURN_IF_ERROR(compatible(static_cast<const T&>(*device)));
      return device;
    }
    std::shared_ptr<T> device = make();
    slot = device;
    return device;
  }

  // Devices alive now (for tests).
  size_t live() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& [key, device] : devices_) n += device.expired() ? 0 : 1;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::type_index, std::string>, std::weak_ptr<void>> devices_;
};

}  // namespace sluice
