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

// Made if need be, proven able to take files, and locked for this run until it exits. Every program
// takes the same lock (.xgrad.lock), so no two runs of any of them share a folder, and the first to
// use a folder marks it as its own (.xgrad-program): another program's run on it is refused, since
// their files (checkpoint.safetensors, report.html, ...) have the same names and different contents.
class OutputFolder {
public:
    OutputFolder(const std::string& path, const std::string& program) : lock_path_(path + "/.xgrad.lock")
    {
        namespace fs = std::filesystem;
        std::error_code error;
        // A link to nowhere: create_directories would say only "File exists".
        if (fs::is_symlink(fs::symlink_status(path, error)) && !fs::exists(path, error)) {
            xgrad::fail("the output folder '", path, "' is a symbolic link to '", fs::read_symlink(path, error).string(),
                        "', which does not exist; create that folder, or give another --out");
        }
        fs::create_directories(path, error);
        XGRAD_CHECK(!error, "cannot create the output folder '", path, "': ", error.message());
        XGRAD_CHECK(fs::is_directory(path), "the output folder '", path, "' is a file, not a folder; give another --out");
        // access(W_OK) is no proof: for root it says yes to /sys/kernel, which takes no files, and the
        // whole run would train only to be discarded. A real file, made and removed, is.
        std::string probe = path + "/." + program + "-probe-XXXXXX";
        const int probe_fd = ::mkstemp(probe.data());
        XGRAD_CHECK(probe_fd >= 0, "the output folder '", path, "' is not writable: cannot create a file in it: ",
              std::strerror(errno));
        ::close(probe_fd);
        XGRAD_CHECK(::unlink(probe.c_str()) == 0, "the output folder '", path, "' is not writable: cannot remove a file from it: ",
              std::strerror(errno));
        lock(path);
        try {
            claim(path, program);
        } catch (...) {
            ::close(fd_);   // a constructor that throws runs no destructor
            throw;
        }
        // for the message a second run prints: "4242 train_lm"
        const std::string holder = std::to_string(::getpid()) + " " + program + "\n";
        if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, holder.data(), holder.size(), 0) < 0) {
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
    // One run per folder: two would write over each other's files. The lock dies with the process.
    void lock(const std::string& path)
    {
        fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        XGRAD_CHECK(fd_ >= 0, "cannot open the lock file '", lock_path_, "': ", std::strerror(errno));
        if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
        const int reason = errno;
        std::ifstream in(lock_path_);
        std::string pid, holder;
        in >> pid >> holder;
        ::close(fd_);
        fd_ = -1;
        XGRAD_CHECK(reason == EWOULDBLOCK, "cannot lock '", lock_path_, "': ", std::strerror(reason));
        xgrad::fail("the output folder '", path, "' is in use by another run (", holder.empty() ? "" : holder + ", ",
                    "process ", pid.empty() ? std::string("unknown") : pid, ", which holds ", lock_path_,
                    "); wait for it to end, or give another --out");
    }

    // The folder's program: written by the first run on it, checked by every later one (under the lock).
    static void claim(const std::string& path, const std::string& program)
    {
        const std::string marker = path + "/.xgrad-program";
        std::ifstream in(marker);
        std::string owner;
        if (in && std::getline(in, owner) && !owner.empty()) {
            XGRAD_CHECK(owner == program, "the output folder '", path, "' holds a ", owner, " run (", marker,
                        " says so), whose files ", program, " would replace or mix with its own; give ", program,
                        " another --out, or remove the folder");
            return;
        }
        xgrad::io::write_file_atomic(marker, program + "\n", program);
    }

    std::string lock_path_;
    int fd_ = -1;
};

