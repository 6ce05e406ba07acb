#include "exec/output_tee.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/fd_io.hpp"

namespace nemokit {

OutputTee::OutputTee(const std::filesystem::path& log_file) {
  log_fd_ = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd_ < 0) throw std::runtime_error(log_file.string() + ": cannot open log: " + std::strerror(errno));
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  saved_out_ = fcntl(1, F_DUPFD_CLOEXEC, 3);
  saved_err_ = fcntl(2, F_DUPFD_CLOEXEC, 3);
  dup2(out_pipe[1], 1);
  dup2(err_pipe[1], 2);
  close(out_pipe[1]);
  close(err_pipe[1]);
  out_read_ = out_pipe[0];
  err_read_ = err_pipe[0];
  pump_ = std::thread([this] {
    const int sources[2] = {out_read_, err_read_}, targets[2] = {saved_out_, saved_err_};
    rt::pump_until_eof(sources, [&](size_t i, const char* data, size_t n) {
      // Failures are ignored: a closed terminal must not stop the stage.
      rt::write_all(targets[i], data, n);
      rt::write_all(log_fd_, data, n);
    });
  });
}

OutputTee::~OutputTee() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  // Putting the saved descriptors back closes the pipes' last write ends: the pump sees EOF.
  dup2(saved_out_, 1);
  dup2(saved_err_, 2);
  if (pump_.joinable()) pump_.join();
  for (int fd : {saved_out_, saved_err_, log_fd_, out_read_, err_read_})
    if (fd >= 0) close(fd);
}

}  // namespace nemokit
