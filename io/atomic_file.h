// Files that appear whole or not at all: written to a temporary beside the target, synced, then
// renamed over it. A full disk or a crash leaves the previous file as it was, never a torn one.
//
//     io::write_file_atomic("out/report.html", html);   // the old report stays until the new one is whole
#pragma once

#include <cstddef>
#include <string>

namespace xgrad::io {

// An open temporary ".<name>.tmp-XXXXXX" beside `path`: write() appends to it, commit() syncs it and
// renames it over `path`. Destroyed without commit() (an exception, a failed write), it removes the
// temporary. While open it holds an flock on the temporary, which tells another process's cleanup
// that it is alive. The file gets the mode a plain open() would give it (0666 less the umask).
// `who` opens every message: "save: cannot write 'out/m.safetensors': No space left on device".
class AtomicFile {
public:
    explicit AtomicFile(std::string path, std::string who = "save");
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const char* bytes, std::size_t n);
    void sync();     // flushes the temporary to disk (commit does it too): files committed together sync first
    void commit();   // then removes the temporaries that killed writers of the same path left behind

private:
    std::string path_, who_, temp_;
    int fd_ = -1;
    bool synced_ = false, committed_ = false;
};

// The whole of `content` to `path`, through an AtomicFile.
void write_file_atomic(const std::string& path, const std::string& content, const std::string& who = "save");

// Removes the temporaries of `path` whose writer died before its rename: those whose flock can be
// taken (a live writer holds its own). Best effort: never an error.
void remove_stale_temporaries(const std::string& path);

}  // namespace xgrad::io
