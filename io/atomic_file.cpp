// AtomicFile: temporary, flock, sync, rename; and the cleanup of temporaries whose writer died.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/check.h"

namespace xgrad::io {

namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

std::filesystem::path folder_of(const std::string& path)
{
    const std::filesystem::path target(path);
    return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

std::string temp_prefix(const std::string& path) { return "." + std::filesystem::path(path).filename().string() + ".tmp-"; }

// The process's umask, read without changing it (umask() can only be read by setting it, which
// would race with other threads creating files): Linux reports it in /proc/self/status.
mode_t current_umask()
{
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::strtoul(line.c_str() + 6, nullptr, 8));
    }
    const mode_t mask = ::umask(022);   // an old kernel: read it the racy way
    ::umask(mask);
    return mask;
}

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string who) : path_(std::move(path)), who_(std::move(who))
{
    const std::filesystem::path folder = folder_of(path_);
    // Another process's cleanup may remove a temporary in the instant between mkstemp and flock
    // (it sees an unlocked leftover); then the name no longer leads to our file, and we start again.
    for (int attempt = 0; attempt < 100; ++attempt) {
        temp_ = (folder / (temp_prefix(path_) + "XXXXXX")).string();
        fd_ = ::mkstemp(temp_.data());
        XGRAD_CHECK(fd_ >= 0, who_, ": cannot create a file in ", in_quotes(folder.string()), ": ", std::strerror(errno));
        struct stat opened {}, named {};
        if (::flock(fd_, LOCK_EX) == 0 && ::fstat(fd_, &opened) == 0 && ::stat(temp_.c_str(), &named) == 0 &&
            opened.st_ino == named.st_ino && opened.st_dev == named.st_dev) {
            // mkstemp makes the file 0600; the file it replaces would have had 0666 less the umask
            ::fchmod(fd_, 0666 & ~current_umask());
            return;
        }
        ::close(fd_);
        fd_ = -1;
    }
    fail(who_, ": cannot create a temporary file for ", in_quotes(path_), ": another process keeps removing them");
}

AtomicFile::~AtomicFile()
{
    if (committed_) return;
    if (fd_ >= 0) ::close(fd_);
    ::unlink(temp_.c_str());
}

void AtomicFile::write(const char* bytes, std::size_t n)
{
    while (n > 0) {
        const ssize_t written = ::write(fd_, bytes, n);
        if (written < 0 && errno == EINTR) continue;
        XGRAD_CHECK(written > 0, who_, ": cannot write ", in_quotes(path_), ": ", std::strerror(errno));
        synced_ = false;
        bytes += written;
        n -= static_cast<std::size_t>(written);
    }
}

void AtomicFile::sync()
{
    XGRAD_CHECK(::fsync(fd_) == 0, who_, ": cannot sync ", in_quotes(path_), ": ", std::strerror(errno));
    synced_ = true;
}

void AtomicFile::commit()
{
    if (!synced_) sync();
    // rename while still holding the lock, so that no cleanup ever sees this temporary unlocked
    XGRAD_CHECK(::rename(temp_.c_str(), path_.c_str()) == 0, who_, ": cannot rename the temporary file to ", in_quotes(path_),
          ": ", std::strerror(errno));
    committed_ = true;
    const int closed = ::close(fd_);
    fd_ = -1;
    XGRAD_CHECK(closed == 0, who_, ": cannot close ", in_quotes(path_), ": ", std::strerror(errno));
    const int dir = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY);   // make the rename itself durable
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    remove_stale_temporaries(path_);
}

void write_file_atomic(const std::string& path, const std::string& content, const std::string& who)
{
    AtomicFile file(path, who);
    file.write(content.data(), content.size());
    file.commit();
}

void remove_stale_temporaries(const std::string& path)
{
    const std::string prefix = temp_prefix(path);
    std::error_code error;
    for (std::filesystem::directory_iterator it(folder_of(path), error), end; !error && it != end; it.increment(error)) {
        const std::string name = it->path().filename().string();
        if (name.size() != prefix.size() + 6 || name.rfind(prefix, 0) != 0) continue;
        // a writer that is alive holds an flock on its temporary; one that died holds none
        const int fd = ::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(it->path().c_str());
        ::close(fd);
    }
}

}  // namespace xgrad::io
