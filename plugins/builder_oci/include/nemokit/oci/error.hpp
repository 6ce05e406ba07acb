#pragma once
#include <stdexcept>
#include <string>

namespace nemokit::oci {

// Every failure while reading or converting an image: the message names the
// file, blob or layer entry at fault and is meant to be shown as-is.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Raised when SIGINT/SIGTERM arrived during a conversion.
class Interrupted : public Error {
 public:
  Interrupted() : Error("interrupted") {}
};

}  // namespace nemokit::oci
