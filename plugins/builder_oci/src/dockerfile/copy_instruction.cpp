// COPY and ADD: the sources (the context, an earlier stage or an image with --from, heredocs,
// URLs for ADD) resolved and keyed, then copied into an overlay of the stage (copy_step.cpp).
#include "build_driver.hpp"

#include <sched.h>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "url_source.hpp"
#include "nemokit/dockerfile/child.hpp"
#include "nemokit/dockerfile/context.hpp"
#include "nemokit/dockerfile/copy_step.hpp"
#include "nemokit/dockerfile/mounts.hpp"
#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/dockerfile/user_db.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;
using nlohmann::json;

void BuildDriver::copy_step(Stage& s, const Instruction& ins) {
  bool add = ins.keyword == "ADD";
  CopyOptions opt;
  opt.unpack_archives = add;
  opt.what = ins.where.str() + ": " + ins.keyword;
  std::optional<std::string> from;
  std::optional<std::string> checksum;
  Location checksum_where;
  bool parents = false;  // each source keeps its folders relative to the context, as BuildKit's --parents
  Vars vars = vars_of(s);
  for (auto& f : ins.flags) {
    if (f.name == "from")
      from = process_word(f.value, vars, words(), f.where);
    else if (f.name == "chown")
      opt.chown = process_word(f.value, vars, words(), f.where);
    else if (f.name == "chmod")
      opt.chmod = parse_chmod(process_word(f.value, vars, words(), f.where), f.where);
    else if (f.name == "link")
      continue;  // layers are independent here anyway
    else if (f.name == "parents" && (f.value.empty() || f.value == "true"))
      parents = true;
    else if (f.name == "checksum" && add)
      checksum = process_word(f.value, vars, words(), f.where), checksum_where = f.where;
    else
      fail_at(f.where, ins.keyword + " --" + f.name + " is not supported by this builder");
  }
  std::vector<std::string> w = ins.json_form ? ins.json_args : split_words(ins.args, vars, words(), ins.args_where);
  if (w.size() < 2) fail_at(ins.args_where, ins.keyword + " needs at least one source and a destination");
  std::string dest = w.back();
  w.pop_back();
  bool dest_is_dir =
      !dest.empty() && (dest.back() == '/' || dest == "." || (dest.size() >= 2 && dest.substr(dest.size() - 2) == "/."));
  if (dest.empty() || dest[0] != '/') dest = (fs::path(workdir_of(s)) / dest).string();

  // Where the sources come from: the context, an earlier stage, or an image.
  std::vector<fs::path> src_lowers;
  std::string src_chain;
  if (from) {
    MountSourceTree tree = tree_of(*from, ins.where);
    src_lowers = tree.lowers;
    src_chain = tree.chain;
    opt.keep_owner = true;
  }

  json key = {{"op", ins.keyword},
              {"dest", dest},
              {"dest_is_dir", dest_is_dir},
              {"chown", opt.chown.value_or("")},
              {"chmod", opt.chmod.value_or(0u)},
              {"workdir", workdir_of(s)},
              {"from", src_chain}};
  if (parents) key["parents"] = true;
  std::string sources_state;
  std::vector<std::pair<std::string, const Heredoc*>> sources;
  // Wildcards that match nothing are skipped; an instruction whose sources all match
  // nothing copies nothing and fails, as Docker's does.
  auto check_some_matched = [&](size_t matched) {
    if (matched > 0) return;
    std::string names;
    for (auto& [word, h] : sources) names += (names.empty() ? "" : ", ") + word;
    fail_at(ins.where,
            ins.keyword + ": no source file matches " + names + (from ? " in --from=" + *from : " in the build context"));
  };
  size_t matched = 0;
  std::optional<StepDirs> downloads;  // the URLs' files, until the step is done
  std::vector<DownloadedFile> url_files;
  if (checksum && (checksum->rfind("sha256:", 0) != 0 || checksum->size() != 71))
    fail_at(checksum_where, "--checksum=" + *checksum + ": expected sha256:<64 hex digits>");
  for (auto& word : w) {
    const Heredoc* h = nullptr;
    if (word.rfind("<<", 0) == 0)
      for (auto& hd : ins.heredocs)
        if (word == "<<" + hd.name || word == "<<-" + hd.name || word.find(hd.name) == 2 + (word[2] == '-')) h = &hd;
    if (add && !h && word.rfind("git@", 0) == 0)
      fail_at(ins.args_where, "ADD " + word + ": adding a git repository is not supported; clone it in a RUN step");
    if (!h && is_url_source(word)) {
      if (!add) fail_at(ins.args_where, "COPY " + word + ": COPY takes no URL (ADD does)");
      if (from) fail_at(ins.args_where, "ADD --from= takes no URL");
      // Downloaded on every build, as BuildKit does; the bytes' digest keys the step.
      if (!downloads) downloads.emplace(store_);
      fs::path folder = downloads->base / ("url-" + std::to_string(url_files.size()));
      fs::create_directory(folder);
      DownloadedFile f = download_url(word, folder, ins.where.str() + ": ADD");
      if (checksum && *checksum != f.digest)
        fail_at(ins.where, "ADD " + word + ": checksum mismatch: --checksum=" + *checksum + ", the download is " + f.digest);
      url_files.push_back(f);
      sources.emplace_back(word, nullptr);
      sources_state += "url " + word + " " + f.name + " " + f.digest + " " +
                       std::to_string(fs::last_write_time(f.path).time_since_epoch().count()) + "\n";
      ++matched;
      continue;
    }
    sources.emplace_back(word, h);
    if (h) {
      sources_state += "heredoc " + h->name + "\n" + h->content;
      ++matched;
    } else if (!from) {
      for (auto& rel : expand_source(req_.context, word, &ignore_, ins.args_where)) {
        sources_state += "src " + rel + "\n";
        hash_tree(req_.context, rel, &ignore_, sources_state);
        ++matched;
      }
    } else {
      sources_state += "src " + word + "\n";
    }
  }
  if (!from) check_some_matched(matched);
  key["sources"] = rt::Sha256::digest_of(sources_state);
  std::string workdir = workdir_of(s);
  std::string user = config_of(s).value("User", "");
  key["user"] = user;
  layer_step(s, key.dump(), ins.original, [&](StepDirs& d) {
    run_in_child(
        [&] {
          mount_overlay(d.mnt, lowers(s), d.upper, d.work);
          fs::path src_root = req_.context;
          const IgnoreRules* ignore = &ignore_;
          if (from) {
            ignore = nullptr;
            if (src_lowers.size() == 1) {
              src_root = src_lowers[0];  // an empty stage
            } else {
              mount_overlay(d.src, src_lowers, {}, {});
              src_root = d.src;
            }
          }
          ResolvedUser owner = resolve_user(d.mnt, user.empty() ? "0" : user);
          mkdir_in_root(d.mnt, workdir, owner.uid, owner.gid);
          opt.ignore = ignore;
          std::vector<CopySource> list;
          size_t next_url = 0;
          for (auto& [word, h] : sources) {
            if (!h && is_url_source(word)) {
              const DownloadedFile& f = url_files[next_url++];
              list.push_back(CopySource{f.path.parent_path(), f.name, false, {}, true});
              continue;
            }
            if (h) {
              list.push_back(CopySource{{}, h->name, true, h->content});
              continue;
            }
            for (auto& rel : expand_source(src_root, word, ignore, ins.args_where))
              list.push_back(CopySource{src_root, rel, false, {}});
          }
          check_some_matched(list.size());
          if (!parents) {
            copy_into_root(d.mnt, list, dest, dest_is_dir, opt);
            return;
          }
          for (auto& src : list) {
            // A folder source copies its contents, so it is kept by naming it in the destination.
            bool dir = !src.is_heredoc && fs::is_directory(resolve_in_root(src.root, src.rel, true));
            std::string parent = src.is_heredoc ? "" : dir ? src.rel : fs::path(src.rel).parent_path().string();
            copy_into_root(d.mnt, {src}, (fs::path(dest) / parent).string() + "/", true, opt);
          }
        },
        ins.where.str() + ": " + ins.keyword, CLONE_NEWNS);
  });
}

}  // namespace nemokit::dockerfile
