#pragma once
// Rootless builds and `nemokit exec`: an ordinary user's work runs as uid 0 of a new user
// namespace, so the RUN sandbox, overlayfs and chown behave as they do for root. With a range in
// /etc/subuid and /etc/subgid the namespace maps 0 to the user and 1..N to that range through
// newuidmap/newgidmap (Debian's uidmap), so an image's owners survive: uid 1234 inside is
// start+1233 on the host, and whatever reads the files inside the namespace sees 1234 again.
// Without a range it maps the user alone (0 only): owners other than root cannot be kept.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace nemokit::dockerfile {

struct IdRange {
  uint32_t start = 0;
  uint32_t count = 0;
};

// The ranges `file` (/etc/subuid or /etc/subgid, lines NAME_OR_ID:START:COUNT) gives the user
// `name` with numeric id `id`, in file order. A missing file has none.
std::vector<IdRange> subordinate_ranges(const std::filesystem::path& file, const std::string& name, uint32_t id);

// An executable in $PATH, then /usr/bin, /usr/sbin, /bin, /sbin (newuidmap, squashfuse); empty
// when there is none.
std::filesystem::path find_program(const std::string& name);

// True when this process runs in a user namespace other than the initial one. Overlayfs then
// takes `userxattr` and keeps its markers in user.overlay.* (trusted.* needs the initial
// namespace's CAP_SYS_ADMIN), and layers unpack into a folder of their own.
bool in_user_namespace();

// True when setgroups(2) is denied here: a single-uid mapping written without newgidmap.
bool setgroups_denied();

// True when this namespace maps uid 0 alone (the user had no subordinate range): commands that
// change owners fail, and a failed RUN step says why.
bool single_uid_namespace();

// What a failed RUN step adds to its error in a single-uid namespace (why and how to get a
// full mapping); empty elsewhere.
std::string single_uid_hint();

// Runs `fn` in a forked child as uid and gid 0 of a new user namespace mapped as above, and
// returns what it returns. `what` names the work in errors ("nemokit build"). Throws BuildError
// when the namespace cannot be made, saying what is missing and how to fix it; an exception
// thrown by `fn` comes back as a BuildError with the same message.
int run_as_namespace_root(const std::function<int()>& fn, const std::string& what);

}  // namespace nemokit::dockerfile
