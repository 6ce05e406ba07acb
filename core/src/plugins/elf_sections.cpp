#include "plugins/elf_sections.hpp"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace nemokit {

namespace {
// Every offset and size read from the file is checked against the file's size before use: a
// plugin file is untrusted input until it has passed these checks.
void read_at(std::ifstream& in, uint64_t file_size, uint64_t off, void* dst, uint64_t len, const char* what) {
  if (off > file_size || len > file_size - off)
    throw std::runtime_error(std::string("truncated ELF file (") + what + " lies outside the file)");
  in.seekg(static_cast<std::streamoff>(off));
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(len));
  if (!in) throw std::runtime_error(std::string("cannot read ") + what);
}
}  // namespace

ElfSections read_elf_sections(const std::filesystem::path& path, const std::initializer_list<const char*>& names) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open the file");
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());

  Elf64_Ehdr eh{};
  if (file_size < sizeof eh) throw std::runtime_error("not a shared library (too small to be an ELF file)");
  read_at(in, file_size, 0, &eh, sizeof eh, "ELF header");
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) throw std::runtime_error("not a shared library (no ELF header)");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    throw std::runtime_error("not a 64-bit little-endian ELF file");
  if (eh.e_type != ET_DYN) throw std::runtime_error("not a shared library (ELF type " + std::to_string(eh.e_type) + ")");
  if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64)
    throw std::runtime_error("built for another machine (ELF machine " + std::to_string(eh.e_machine) + ")");
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum)
    throw std::runtime_error("ELF file has no usable section table");

  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  read_at(in, file_size, eh.e_shoff, sh.data(), sh.size() * sizeof(Elf64_Shdr), "section table");
  const Elf64_Shdr& strtab = sh[eh.e_shstrndx];
  std::string shstr(strtab.sh_size, '\0');
  read_at(in, file_size, strtab.sh_offset, shstr.data(), strtab.sh_size, "section name table");

  ElfSections out;
  for (const Elf64_Shdr& s : sh) {
    if (s.sh_name >= shstr.size()) continue;
    const char* name = shstr.c_str() + s.sh_name;
    for (const char* wanted : names) {
      if (std::strcmp(name, wanted) != 0) continue;
      std::string bytes;
      if (s.sh_type != SHT_NOBITS) {
        bytes.resize(s.sh_size);
        read_at(in, file_size, s.sh_offset, bytes.data(), s.sh_size, wanted);
      }
      out.sections[wanted] = std::move(bytes);
    }
  }
  return out;
}

}  // namespace nemokit
