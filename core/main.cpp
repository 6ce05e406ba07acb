#include "cli/app.hpp"

#include <string>
#include <vector>

int main(int argc, char** argv) {
  return nemokit::cli::run_app(std::vector<std::string>(argv + 1, argv + argc));
}
