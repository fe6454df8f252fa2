// The examples' output folder: made if need be, proven writable, locked for one run at a time.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "xgrad.h"

// Made if need be, proven able to take files, and locked for this run until it exits: a second run
// on the same folder is refused, naming the process that holds it.
class OutputFolder {
public:
    OutputFolder(const std::string& path, const std::string& program) : lock_path_(path + "/." + program + ".lock")
    {
        std::error_code error;
        std::filesystem::create_directories(path, error);
        XGRAD_CHECK(!error, "cannot create the output folder '", path, "': ", error.message());
        // access(W_OK) is no proof: for root it says yes to /sys/kernel, which takes no files, and the
        // whole run would train only to be discarded. A real file, made and removed, is.
        std::string probe = path + "/." + program + "-probe-XXXXXX";
        const int probe_fd = ::mkstemp(probe.data());
        XGRAD_CHECK(probe_fd >= 0, "the output folder '", path, "' is not writable: cannot create a file in it: ",
              std::strerror(errno));
        ::close(probe_fd);
        XGRAD_CHECK(::unlink(probe.c_str()) == 0, "the output folder '", path, "' is not writable: cannot remove a file from it: ",
              std::strerror(errno));
        // One run per folder: two would write over each other's files. The lock dies with the process.
        fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        XGRAD_CHECK(fd_ >= 0, "cannot open the lock file '", lock_path_, "': ", std::strerror(errno));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int reason = errno;
            std::ifstream in(lock_path_);
            std::string holder;
            std::getline(in, holder);
            ::close(fd_);
            fd_ = -1;
            XGRAD_CHECK(reason == EWOULDBLOCK, "cannot lock '", lock_path_, "': ", std::strerror(reason));
            xgrad::fail("the output folder '", path, "' is in use by another ", program, " run (process ",
                 holder.empty() ? std::string("unknown") : holder, ", which holds ", lock_path_,
                 "); wait for it to end, or give another --out");
        }
        const std::string pid = std::to_string(::getpid()) + "\n";   // for the message a second run prints
        if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
            // the lock holds without it; only the second run's message would lack the process id
        }
    }
    ~OutputFolder()
    {
        if (fd_ >= 0) ::close(fd_);
    }
    OutputFolder(const OutputFolder&) = delete;
    OutputFolder& operator=(const OutputFolder&) = delete;

private:
    std::string lock_path_;
    int fd_ = -1;
};

