#include "nemokit/build/rootfs_path.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "nemokit/build/dockerfile.hpp"

namespace nemokit::build {
namespace fs = std::filesystem;

namespace {

std::deque<std::string> components(const std::string& path) {
    std::deque<std::string> out;
    size_t i = 0;
    while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        std::string c = path.substr(i, j - i);
        if (!c.empty() && c != ".") out.push_back(c);
        i = j + 1;
    }
    return out;
}

}  // namespace

bool clean_relative(const std::string& path, std::string& out) {
    std::vector<std::string> parts;
    for (auto& c : components(path)) {
        if (c == "..") {
            if (parts.empty()) return false;
            parts.pop_back();
        } else {
            parts.push_back(c);
        }
    }
    out.clear();
    for (auto& p : parts) out += (out.empty() ? "" : "/") + p;
    return true;
}

fs::path resolve_in_root(const fs::path& root, const std::string& path, bool follow_last) {
    std::deque<std::string> todo = components(path);
    std::vector<std::string> done;
    int links = 0;
    auto host = [&]() {
        fs::path p = root;
        for (auto& d : done) p /= d;
        return p;
    };
    while (!todo.empty()) {
        std::string c = todo.front();
        todo.pop_front();
        if (c == "..") {
            if (!done.empty()) done.pop_back();
            continue;
        }
        fs::path candidate = host() / c;
        struct stat st;
        bool last = todo.empty();
        if (lstat(candidate.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && (!last || follow_last)) {
            if (++links > 255) throw BuildError(path + ": too many levels of symbolic links");
            std::vector<char> buf(static_cast<size_t>(st.st_size) + 1 + 4096);
            ssize_t n = readlink(candidate.c_str(), buf.data(), buf.size() - 1);
            if (n < 0) throw BuildError(candidate.string() + ": readlink: " + std::strerror(errno));
            std::string target(buf.data(), size_t(n));
            auto parts = components(target);
            if (!target.empty() && target[0] == '/') done.clear();
            for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front(*it);
            continue;
        }
        done.push_back(c);
    }
    return host();
}

fs::path mkdir_in_root(const fs::path& root, const std::string& path, unsigned uid, unsigned gid) {
    std::string sofar;
    for (auto& c : components(path)) {
        sofar += "/" + c;
        fs::path p = resolve_in_root(root, sofar, true);
        struct stat st;
        if (lstat(p.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) throw BuildError(sofar + " exists and is not a folder");
            continue;
        }
        if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST)
            throw BuildError("mkdir " + sofar + ": " + std::strerror(errno));
        if (chown(p.c_str(), uid, gid) != 0) throw BuildError("chown " + sofar + ": " + std::strerror(errno));
    }
    return resolve_in_root(root, path, true);
}

}  // namespace nemokit::build
