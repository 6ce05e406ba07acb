#include "nemokit/oci/image_cli.hpp"

#include <sqfs/compressor.h>
#include <sqfs/io.h>
#include <sqfs/super.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/image.hpp"
#include "nemokit/registry/registry.hpp"

namespace nemokit::oci {
namespace {

const char* kUsage =
    "usage: nemokit image convert SRC DEST.sqsh [--comp zstd|gzip|xz|lz4] [--level N]\n"
    "                             [--block-size N] [--mtime EPOCH]\n"
    "       nemokit image inspect SRC | NAME\n"
    "       nemokit image ls\n"
    "       nemokit image push SRC | NAME REGISTRY/REPO[:TAG] [--chunk-size N]\n"
    "SRC is oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG] or a path;\n"
    "NAME is an image of the build cache, as `nemokit image ls` lists it.\n"
    "Defaults: --comp zstd --level 3 --block-size 128K; --mtime sets every time stamp.\n"
    "push: over the OCI distribution API, with the credentials of the enroot credentials file\n"
    "($ENROOT_CONFIG_PATH/.credentials or ~/.config/enroot/.credentials, netrc format); blobs the\n"
    "registry has are not sent again; --chunk-size uploads each blob in PATCH chunks (e.g. 64M).\n";

struct UsageError : Error {
  using Error::Error;
};

int64_t parse_int(const std::string& flag, const std::string& v) {
  try {
    size_t pos = 0;
    long long n = std::stoll(v, &pos);
    if (pos != v.size()) throw std::invalid_argument(v);
    return n;
  } catch (const std::exception&) {
    throw UsageError(flag + ": '" + v + "' is not a number");
  }
}

// Accepts 131072, 128K, 1M.
uint32_t parse_size(const std::string& flag, std::string v) {
  int64_t mult = 1;
  if (!v.empty() && (v.back() == 'K' || v.back() == 'k'))
    mult = 1024, v.pop_back();
  else if (!v.empty() && (v.back() == 'M' || v.back() == 'm'))
    mult = 1024 * 1024, v.pop_back();
  int64_t n = parse_int(flag, v) * mult;
  if (n <= 0 || n > (1 << 20)) throw UsageError(flag + ": " + std::to_string(n) + " is out of range");
  return uint32_t(n);
}

std::string human(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / (1ull << 30));
  else if (bytes >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1ull << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", double(bytes) / 1024);
  else
    std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)bytes);
  return buf;
}

int run_convert(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  ConvertOptions options;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i], value;
    bool has_value = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      value = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      has_value = true;
    }
    auto take = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    if (a == "--comp")
      options.squashfs.compressor = take();
    else if (a == "--level")
      options.squashfs.level = int(parse_int(a, take()));
    else if (a == "--block-size")
      options.squashfs.block_size = parse_size(a, take());
    else if (a == "--mtime") {
      int64_t t = parse_int(a, take());
      if (t < 0 || t > int64_t(UINT32_MAX)) throw UsageError("--mtime: " + std::to_string(t) + " is out of range");
      options.squashfs.fixed_mtime = t;
    } else if (a.rfind("--", 0) == 0)
      throw UsageError("unknown option " + a);
    else
      positional.push_back(a);
  }
  if (positional.size() != 2) throw UsageError("convert needs SRC and DEST");
  try {
    validate(options.squashfs);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  options.progress = true;  // a live line on a terminal, plain lines in a log
  auto start = std::chrono::steady_clock::now();
  ConvertResult r = convert_image(positional[0], positional[1], options);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
  if (::isatty(1))
    std::printf("%s: %zu layers, %llu inodes, %s in %.1f s\n", positional[1].c_str(), r.layers, (unsigned long long)r.inodes,
                human(r.output_bytes).c_str(), secs);
  return 0;
}

// The facts of a squashfs image file: its size and what its superblock says.
void print_squashfs(const std::filesystem::path& f) {
  std::string comp = "?";
  unsigned long long inodes = 0, block = 0;
  if (sqfs_file_t* file = sqfs_open_file(f.c_str(), SQFS_FILE_OPEN_READ_ONLY)) {
    sqfs_super_t super;
    if (sqfs_super_read(&super, file) == 0) {
      const char* name = sqfs_compressor_name_from_id(SQFS_COMPRESSOR(super.compression_id));
      comp = name ? name : "?";
      inodes = super.inode_count;
      block = super.block_size;
    }
    sqfs_destroy(file);
  }
  std::printf("squashfs: %s (%s, %s, %llu K blocks, %llu inodes)\n", f.c_str(), human(std::filesystem::file_size(f)).c_str(),
              comp.c_str(), block / 1024, inodes);
}

// NAME as `image ls` lists it: the OCI layout the builder keeps beside the squashfs. nullopt
// when `src` is not a plain name (a SRC spec or an existing path).
std::optional<std::filesystem::path> cache_layout(const std::string& src, const std::filesystem::path& cache) {
  std::error_code ec;
  if (src.find(':') != std::string::npos || src.find('/') != std::string::npos || std::filesystem::exists(src, ec))
    return std::nullopt;
  return cache / "oci" / src;
}

int run_push(const std::vector<std::string>& args, const std::filesystem::path& cache) {
  std::vector<std::string> positional;
  registry::PushOptions options;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--chunk-size" || a.rfind("--chunk-size=", 0) == 0) {
      std::string v = a.find('=') != std::string::npos ? a.substr(a.find('=') + 1) : i + 1 < args.size() ? args[++i] : "";
      if (v.empty()) throw UsageError("--chunk-size needs a value");
      int64_t mult = 1;
      if (v.back() == 'K' || v.back() == 'k')
        mult = 1 << 10, v.pop_back();
      else if (v.back() == 'M' || v.back() == 'm')
        mult = 1 << 20, v.pop_back();
      int64_t n = parse_int("--chunk-size", v) * mult;
      if (n <= 0) throw UsageError("--chunk-size: " + std::to_string(n) + " is not a size");
      options.chunk_size = uint64_t(n);
    } else if (a.rfind("--", 0) == 0) {
      throw UsageError("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) throw UsageError("push needs an image and REGISTRY/REPO[:TAG]");
  const std::string& src = positional[0];
  std::string spec = src;
  if (auto layout = cache_layout(src, cache)) {
    std::error_code ec;
    if (!std::filesystem::is_directory(*layout, ec))
      throw Error("no image \"" + src + "\" built in " + cache.string() + " (nemokit image ls lists them" +
                  (std::filesystem::exists(cache / "containers" / (src + ".sqsh"), ec)
                       ? "; " + src + ".sqsh was made by image convert and has no OCI layout to push"
                       : "") +
                  ")");
    spec = "oci:" + layout->string() + ":" + src;
  }
  registry::ImageReference dest = registry::parse_reference(positional[1]);
  oci::Image image = open_image(spec);
  registry::PushResult r = registry::push_image(image, dest, options);
  std::cerr << "pushed " << dest.str() << ": " << r.blobs_uploaded << " blobs uploaded (" << human(r.bytes_uploaded) << "), "
            << r.blobs_present << " already there\n";
  // The reference by digest, for a pinned FROM or pull.
  std::printf("%s/%s@%s\n", dest.registry.c_str(), dest.repository.c_str(), r.manifest_digest.c_str());
  return 0;
}

int run_inspect(const std::vector<std::string>& args, const std::filesystem::path& cache) {
  if (args.size() != 2) throw UsageError("inspect needs SRC or NAME");
  // NAME as `image ls` lists it: the OCI layout the builder keeps beside the squashfs, or, for a
  // squashfs made elsewhere (image convert), the squashfs alone.
  const std::string& src = args[1];
  std::error_code ec;
  const std::filesystem::path layout = cache / "oci" / src, sqsh = cache / "containers" / (src + ".sqsh");
  const bool plain_name =
      src.find(':') == std::string::npos && src.find('/') == std::string::npos && !std::filesystem::exists(src, ec);
  if (plain_name && !std::filesystem::is_directory(layout, ec)) {
    if (!std::filesystem::is_regular_file(sqsh, ec))
      throw Error("no image \"" + src + "\" in " + cache.string() + " (nemokit image ls lists them) and no such file");
    print_squashfs(sqsh);
    std::printf("no OCI layout in %s: made by image convert, not built here\n", layout.c_str());
    return 0;
  }
  Image img = open_image(plain_name ? "oci:" + layout.string() + ":" + src : src);
  std::printf("source:  %s\nformat:  %s\n", img.source.c_str(), img.format.c_str());
  for (auto& t : img.tags) std::printf("tag:     %s\n", t.c_str());
  std::printf("config:  %s\nplatform: %s/%s\n", img.config_digest.c_str(), img.config.value("os", "?").c_str(),
              img.config.value("architecture", "?").c_str());
  if (plain_name && std::filesystem::is_regular_file(sqsh, ec)) print_squashfs(sqsh);
  uint64_t total = 0;
  std::printf("layers:  %zu (bottom first)\n", img.layers.size());
  for (size_t i = 0; i < img.layers.size(); ++i) {
    auto& l = img.layers[i];
    total += l.blob.size;
    std::printf("  %2zu  %10s  %s  %s\n      diff_id %s\n", i + 1, human(l.blob.size).c_str(),
                l.digest ? l.digest->c_str() : "(no descriptor digest)", l.media_type.empty() ? "" : l.media_type.c_str(),
                l.diff_id.c_str());
  }
  std::printf("total:   %s\n", human(total).c_str());
  auto cfg = img.config.value("config", nlohmann::json::object());
  for (const char* key : {"User", "WorkingDir", "Entrypoint", "Cmd", "Env", "Volumes", "ExposedPorts", "Labels", "StopSignal"}) {
    if (cfg.contains(key) && !cfg[key].is_null())
      std::printf("%-11s %s\n", (std::string(key) + ":").c_str(), cfg[key].dump().c_str());
  }
  return 0;
}

int run_ls(const std::vector<std::string>& args, const std::filesystem::path& cache) {
  if (args.size() != 1) throw UsageError("ls takes no arguments");
  auto dir = cache / "containers";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    std::printf("no images in %s\n", dir.c_str());
    return 0;
  }
  std::vector<std::filesystem::path> files;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".sqsh") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    std::string comp = "?";
    if (sqfs_file_t* file = sqfs_open_file(f.c_str(), SQFS_FILE_OPEN_READ_ONLY)) {
      sqfs_super_t super;
      if (sqfs_super_read(&super, file) == 0) {
        const char* name = sqfs_compressor_name_from_id(SQFS_COMPRESSOR(super.compression_id));
        comp = name ? name : "?";
      }
      sqfs_destroy(file);
    }
    std::printf("%-40s %12s  %s\n", f.stem().c_str(), human(std::filesystem::file_size(f)).c_str(), comp.c_str());
  }
  return 0;
}

}  // namespace

int image_command(const std::vector<std::string>& args, const std::filesystem::path& build_cache_dir) {
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      (args.empty() ? std::cerr : std::cout) << kUsage;
      return args.empty() ? 2 : 0;
    }
    // `image SUB --help` (or -h), unless it is the value of an option.
    for (size_t i = 1; i < args.size(); ++i)
      if ((args[i] == "--help" || args[i] == "-h") && args[i - 1].rfind("--", 0) != 0) {
        std::cout << kUsage;
        return 0;
      }
    if (args[0] == "convert") return run_convert(args);
    if (args[0] == "inspect") return run_inspect(args, build_cache_dir);
    if (args[0] == "ls") return run_ls(args, build_cache_dir);
    if (args[0] == "push") return run_push(args, build_cache_dir);
    throw UsageError("unknown command '" + args[0] + "'");
  } catch (const UsageError& e) {
    std::cerr << "nemokit image: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "nemokit image: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace nemokit::oci
