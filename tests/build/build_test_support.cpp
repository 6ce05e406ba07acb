#include "build_test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nemokit/runtime/sha256.hpp"

extern char** environ;

namespace buildtest {

Result run(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& stdin_text) {
    int out[2], err[2], in[2];
    if (pipe(out) || pipe(err) || pipe(in)) throw std::runtime_error("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]}) close(fd);
        for (auto& e : env) putenv(strdup(e.c_str()));
        std::vector<char*> av;
        for (auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
        av.push_back(nullptr);
        execvp(av[0], av.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    close(in[0]);
    if (!stdin_text.empty() && write(in[1], stdin_text.data(), stdin_text.size()) < 0) {
    }
    close(in[1]);
    Result r;
    struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? r.out : r.err).append(buf, size_t(n));
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string nemokit_binary() { return std::string(NEMOKIT_BINARY_DIR) + "/bin/nemokit"; }

fs::path scratch_dir(const std::string& name) {
    fs::path p = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "build" / "work" / name;
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

fs::path test_base_dir() {
    fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "build" / "base";
    fs::path script = fs::path(NEMOKIT_SOURCE_DIR) / "tests" / "build" / "make_test_base.sh";
    // Remade when the script changes.
    fs::path stamp = dir / "script.sha256";
    std::string want = nemokit::rt::Sha256::digest_of(read_file(script));
    // ctest -j runs tests of one binary side by side: one of them makes the base.
    fs::create_directories(dir);
    int lock = open((dir.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    flock(lock, LOCK_EX);
    struct Unlock {
        int fd;
        ~Unlock() { close(fd); }
    } unlock{lock};
    if (fs::exists(dir / "base.tar") && fs::exists(stamp) && read_file(stamp) == want) return dir;
    Result r = run({"sh", script.string(), dir.string()});
    if (r.code != 0) throw std::runtime_error("make_test_base.sh failed: " + r.err);
    write_file(stamp, want);
    return dir;
}

std::map<std::string, std::string> tree_listing(const fs::path& root) {
    std::map<std::string, std::string> out;
    auto describe = [&](const fs::path& p) {
        struct stat st;
        if (lstat(p.c_str(), &st) != 0) throw std::runtime_error("lstat " + p.string());
        std::ostringstream s;
        char type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : S_ISREG(st.st_mode) ? 'f' : 'o';
        s << type << " " << std::oct << (st.st_mode & 07777) << std::dec << " " << st.st_uid << ":" << st.st_gid;
        if (S_ISLNK(st.st_mode)) s << " -> " << fs::read_symlink(p).string();
        if (S_ISREG(st.st_mode)) s << " " << nemokit::rt::Sha256::digest_of(read_file(p));
        return s.str();
    };
    out[""] = describe(root);
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
        out[it->path().lexically_relative(root).string()] = describe(it->path());
    return out;
}

SquashfsMount::SquashfsMount(const fs::path& image) {
    char tmpl[] = "/tmp/nemokit-sqsh-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    Result r = run({"mount", "-t", "squashfs", "-o", "loop,ro", image.string(), dir_.string()});
    if (r.code != 0) throw std::runtime_error("mount " + image.string() + ": " + r.err);
}

SquashfsMount::~SquashfsMount() {
    run({"umount", dir_.string()});
    rmdir(dir_.c_str());
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& p, const std::string& content) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
}

}  // namespace buildtest
