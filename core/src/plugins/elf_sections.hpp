#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace nemokit {

// Reads named sections of an ELF64 shared object straight from the file, without loading it, so
// a plugin's manifest and resources can be read without running any of its code.
struct ElfSections {
  std::map<std::string, std::string> sections;  // name -> bytes, for the names asked for
};

// Throws std::runtime_error with the cause (not an ELF file, not a shared library, truncated,
// wrong class or machine) and without the path: the caller names the file.
ElfSections read_elf_sections(const std::filesystem::path& path, const std::initializer_list<const char*>& names);

}  // namespace nemokit
