// A stand-alone `nemokit image` for the benchmark, linked against nemokit_oci.
#include <string>
#include <vector>

#include "nemokit/oci/image_cli.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return nemokit::oci::image_command(args, ".");
}
