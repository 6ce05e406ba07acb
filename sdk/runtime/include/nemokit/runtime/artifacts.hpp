#pragma once
// The artifact store: what each stage produced (data blends, packed SFT data, RL splits, models),
// with content digests, the resolved config that produced it and the artifacts it used, so that
// a model can be traced back to the raw text it was trained on. Offline, plain files:
//
//   {root}/{name}/v{N}/metadata.json   name, version, type, path (where the files are), producer,
//                                      created_at, content_digest, the type's fields, config,
//                                      tracking.used_artifacts
//   {root}/{name}/v{N}/manifest.json   every file under path: relative path, size, mtime, sha256
//   {root}/{name}/latest               "vN": the newest version
//
// A version folder appears whole (written beside it, then renamed into place; the rename that
// claims v{N} fails when another process claimed it first, and the publisher moves on to N+1),
// so two jobs publishing the same name at once get two versions and neither is lost. The files
// themselves stay where the stage wrote them; `path` names them.
//
// The root: $NEMOKIT_ARTIFACTS_ROOT, else env.toml's `[artifacts] root`, else
// $XDG_CACHE_HOME/nemokit/artifacts, else ~/.cache/nemokit/artifacts. nemokit sets
// NEMOKIT_ARTIFACTS_ROOT for every task of a job to the root the job was submitted with.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nemokit::rt::artifacts {

// The store root as described above; `configured` is env.toml's [artifacts] root ("~" expanded).
std::filesystem::path store_root(const std::string& configured = {});

// Names: letters, digits, '.', '_' and '-', not starting with '.' (they are folder names).
bool valid_name(std::string_view name);

// "NAME", "NAME:latest" or "NAME:vN". nullopt when `text` is not of that form.
struct Ref {
  std::string name;
  std::optional<int64_t> version;  // nullopt: latest
  std::string text() const { return name + (version ? ":v" + std::to_string(*version) : ":latest"); }
};
std::optional<Ref> parse_ref(std::string_view text);
// True for "NAME:latest" and "NAME:vN" (the forms a config value may take as a whole).
bool looks_like_ref(std::string_view text);

// A reference that names no artifact: the message names the reference and lists what exists.
struct NotFound : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Artifact {
  std::string name;
  int64_t version = 0;
  std::filesystem::path dir;  // {root}/{name}/v{N}
  nlohmann::json metadata;

  std::string ref() const { return name + ":v" + std::to_string(version); }
  std::string type() const { return metadata.value("type", ""); }
  std::string digest() const { return metadata.value("content_digest", ""); }
  std::filesystem::path path() const { return metadata.value("path", ""); }
  // tracking.used_artifacts as "NAME:vN" references.
  std::vector<std::string> used() const;
};

// The content of a file or folder: each file's sha256 (read in 1 MiB blocks, never whole), and
// one digest over the sorted list of (relative path, size, sha256).
struct Content {
  std::string digest;      // "sha256:<64 hex>"
  nlohmann::json files;    // [{"path", "size", "mtime_ns", "sha256"}], sorted by path
  uint64_t bytes = 0;
};
// `exclude`: relative paths left out (a data folder's own metadata.json, which holds a time).
Content content_of(const std::filesystem::path& path, const std::vector<std::string>& exclude = {});

struct PublishRequest {
  std::string name;
  std::string type;                    // PretrainBlendsArtifact, SFTDataArtifact, SplitJsonlDataArtifact, ModelArtifact
  std::filesystem::path path;          // the files: a folder or one file
  nlohmann::json fields = nlohmann::json::object();  // the type's own fields (total_tokens, step, final_loss, ...)
  nlohmann::json config = nlohmann::json::object();  // the resolved config that produced it
  std::vector<std::string> used;       // "NAME:vN" of the artifacts it was made from
  std::string producer;                // e.g. "nemokit data prep nano3 pretrain"
  std::filesystem::path job_dir;       // the job folder, when there is one
  std::vector<std::string> exclude;    // left out of the digest (see content_of)
};

class Store {
 public:
  explicit Store(std::filesystem::path root);
  // store_root() with `configured`.
  static Store open_default(const std::string& configured = {}) { return Store(store_root(configured)); }
  const std::filesystem::path& root() const { return root_; }

  std::vector<std::string> names() const;                       // sorted
  std::vector<int64_t> versions(const std::string& name) const; // ascending; empty when none
  // The `latest` pointer, else the highest version; nullopt when the name has none.
  std::optional<int64_t> latest(const std::string& name) const;
  // Throws NotFound (naming the reference and what exists) or std::runtime_error (a version
  // folder that cannot be read).
  Artifact get(const Ref& ref) const;
  Artifact resolve(std::string_view ref_text) const;  // "NAME", "NAME:latest", "NAME:vN"
  std::vector<Artifact> all() const;                  // every version of every name

  // The newest version whose path is `path` (compared canonically) and whose files are still as
  // published (the same names, sizes and modification times, so nothing is read in full).
  std::optional<Artifact> find_by_path(const std::filesystem::path& path) const;
  // The versions a job published (its folder, compared canonically), of `name` or, when empty,
  // of every name; newest version first. How a pipe's stage finds the model of the stage before
  // it even when another job has published a newer version of the same name since.
  std::vector<Artifact> published_by(const std::filesystem::path& job_dir, const std::string& name = {}) const;

  // Writes a new version; throws std::invalid_argument for a bad name or a missing path, and
  // std::runtime_error naming the folder for a store that cannot be written.
  Artifact publish(const PublishRequest& request) const;

 private:
  std::filesystem::path root_;
};

// The sentence NotFound carries: "no artifact REF in ROOT (artifacts: a:v1..v3, b:v1)".
std::string describe_missing(const Store& store, const std::string& ref_text, const std::string& why);

// One field of an artifact's metadata by dotted path ("path", "splits.train.tokens"); nullptr
// when absent.
const nlohmann::json* field(const nlohmann::json& metadata, std::string_view dotted);

// ---- What stages call (through the SDK) -------------------------------------------------------

// Who publishes: the stage of one job, as the plugin call names it.
struct Producer {
  std::string family, stage, substage;
  std::string verb;                    // "data prep" or "run"
  nlohmann::json config;               // the resolved config of the job
  std::filesystem::path job_dir;
  std::function<void(const std::string&)> log;  // one line per publish; may be empty
  std::string text() const;            // "nemokit run nano3 pretrain"
};

// True on the rank that publishes (RANK unset or 0); other ranks of a job publish nothing.
bool publishing_rank();

// A stage's data folder as an artifact: the folder's metadata.json (written by the data prep:
// type, name and the type's fields) becomes the artifact's metadata, with the digest of every
// other file, the producer's config and `used`. Rank 0 only (nullopt elsewhere).
std::optional<Artifact> publish_data_folder(const Producer& producer, const std::filesystem::path& folder,
                                            const std::vector<std::string>& used = {});

// The artifact for a folder a stage read: the store's version of it when its files are
// unchanged, else (a data folder with its own metadata.json, or a model folder) a new version
// published now; nullopt when the folder is neither (nothing to record).
std::optional<Artifact> artifact_of_folder(const Producer& producer, const std::filesystem::path& folder);

// What a finished training run hands to publish_model.
struct TrainedModel {
  std::filesystem::path model_dir;     // the final checkpoint (config.json + weights)
  std::vector<std::filesystem::path> used;  // folders it read: its data, the model it started from
};

// What a finished run leaves, read from its resolved config: the newest complete checkpoint of
// checkpoint.dir (else JOB/checkpoints), and data.output (else JOB/data) as a used folder. The
// stage adds what else it read (the model it started from). Throws when there is no checkpoint.
TrainedModel trained_model_of(const nlohmann::json& config, const std::filesystem::path& job_dir);

// Publishes a finished training run's model as a ModelArtifact named by the config's
// `artifact.name`, else "<family>-<stage>[-<substage>]-model": step (trainer_state.json), the
// last training loss of the job's metrics.jsonl (final_loss), the tokenizer, and each used
// folder as an artifact (artifact_of_folder). Rank 0 only.
std::optional<Artifact> publish_model(const Producer& producer, const TrainedModel& model);

// The default model artifact name for a stage.
std::string model_artifact_name(const Producer& producer);

}  // namespace nemokit::rt::artifacts
