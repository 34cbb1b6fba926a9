// Typed access to a sensor's `params = {...}` table, with errors that name
// FILE:LINE:COL. Each driver reads the keys it knows; CheckAllUsed() then
// rejects any key nobody read (unknown keys are errors, never ignored).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "common/status.h"


namespace sluice {

class Params {
 public:
  // `table` may be null (no params given). `file`, `line`, `column` locate
  // the sensor for errors about missing keys. `sensor` names it in messages.
  Params(std::string file, std::string sensor, const toml::table* table,
         int line, int column);

  // Each getter returns `def` when the key is absent and an
  // InvalidArgument "FILE:LINE:COL: sensor \"x\": param \"k\" must be ..."
  // when it has the wrong type or an invalid value.
  StatusOr<double> Number(const std::string& key, double def);
  StatusOr<int64_t> Integer(const std::string& key, int64_t def);
  StatusOr<bool> Bool(const std::string& key, bool def);
  StatusOr<std::string> String(const std::string& key, const std::string& def);
  StatusOr<int64_t> Duration(const std::string& key, int64_t def_us);
  StatusOr<std::vector<std::string>> StringList(const std::string& key);
  // Returns an error if the key is absent.
  StatusOr<std::string> RequiredString(const std::string& key);
  bool Has(const std::string& key) const;

  // An error located at `key` (or at the sensor if absent).
  Status ErrorAt(const std::string& key, const std::string& what) const;
  // Errors on the first key (in file order) no getter asked for:
  // "FILE:LINE:COL: sensor \"x\": unknown param \"k\" for driver \"d\""
  // (the driver part once set_driver() was called).
  Status CheckAllUsed() const;
  // An error located at the sensor itself: "FILE:LINE:COL: sensor \"x\": what".
  Status SensorError(const std::string& what) const;

  // Names the driver in CheckAllUsed()'s message; the registry sets it.
  void set_driver(const std::string& driver) { driver_ = driver; }
  const std::string& driver() const { return driver_; }
  const std::string& sensor() const { return sensor_; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::string sensor_;
  const toml::table* table_;
  int line_;
  int column_;
  std::set<std::string> used_;
  std::string driver_;

  // The node for `key` (marking it used), or null when absent.
  const toml::node* Get(const std::string& key);
  // "FILE:LINE:COL" of `node`, falling back to the sensor's position.
  std::string Where(const toml::node* node) const;
};

}  // namespace sluice
