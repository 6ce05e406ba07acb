#include "nemokit/oci/atomic_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "nemokit/oci/error.hpp"

namespace nemokit::oci {

AtomicOutput::AtomicOutput(std::filesystem::path dest) : dest_(std::move(dest)) {
    auto dir = dest_.parent_path();
    if (dir.empty()) dir = ".";
    std::string pattern = (dir / ("." + dest_.filename().string() + ".partial-XXXXXX")).string();
    int fd = ::mkstemp(pattern.data());
    if (fd < 0) throw Error(dest_.string() + ": cannot create a file in " + dir.string() + ": " + std::strerror(errno));
    ::fchmod(fd, 0644);
    ::close(fd);
    temp_ = pattern;
}

AtomicOutput::~AtomicOutput() {
    if (!committed_) ::unlink(temp_.c_str());
}

void AtomicOutput::commit() {
    int fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        int err = errno;
        if (fd >= 0) ::close(fd);
        throw Error(dest_.string() + ": cannot sync: " + std::strerror(err));
    }
    ::close(fd);
    if (::rename(temp_.c_str(), dest_.c_str()) != 0)
        throw Error(dest_.string() + ": cannot rename into place: " + std::strerror(errno));
    committed_ = true;
    auto dir = dest_.parent_path();
    if (dir.empty()) dir = ".";
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace nemokit::oci
