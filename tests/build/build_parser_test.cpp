// Dockerfile syntax, word expansion, .dockerignore patterns, image references
// the credentials file and registry auth challenges: pure functions, checked against what Docker's
// documentation says each construct means.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../../plugins/builder_oci/src/dockerfile/foreign_exec.hpp"
#include "../../plugins/builder_oci/src/registry/auth_challenge.hpp"
#include "../../plugins/builder_oci/src/registry/credentials.hpp"
#include "../../plugins/builder_oci/src/registry/registry_replies.hpp"
#include "nemokit/dockerfile/builder.hpp"
#include "nemokit/dockerfile/context.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/dockerfile/user_db.hpp"
#include "nemokit/dockerfile/words.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/platform.hpp"
#include "nemokit/registry/registry.hpp"

using namespace nemokit::dockerfile;
using namespace nemokit::registry;

namespace {

std::string error_of(const std::string& text) {
  try {
    parse_dockerfile(text, "Dockerfile");
  } catch (const BuildError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(BuildParser, InstructionsContinuationsAndComments) {
  auto df = parse_dockerfile(
      "# a comment\n"
      "ARG BASE=scratch\n"
      "from ${BASE} AS Build\n"
      "RUN echo one \\\n"
      "  # a comment inside the continuation\n"
      "    two\n"
      "\n"
      "COPY --from=build --chown=1:2 a b /dst/\n"
      "CMD [\"/bin/app\", \"--flag\"]\n"
      "ENTRYPOINT not json [\n",
      "Dockerfile");
  ASSERT_EQ(df.instructions.size(), 6u);
  EXPECT_EQ(df.instructions[1].keyword, "FROM");
  EXPECT_EQ(df.instructions[1].where.line, 3);
  EXPECT_EQ(df.instructions[2].keyword, "RUN");
  EXPECT_EQ(df.instructions[2].args, "echo one     two");
  const auto& copy = df.instructions[3];
  ASSERT_EQ(copy.flags.size(), 2u);
  EXPECT_EQ(copy.flag("from")->value, "build");
  EXPECT_EQ(copy.flag("chown")->value, "1:2");
  EXPECT_EQ(copy.flag("chown")->where.column, 19);
  EXPECT_EQ(copy.args, "a b /dst/");
  EXPECT_TRUE(df.instructions[4].json_form);
  EXPECT_EQ(df.instructions[4].json_args, (std::vector<std::string>{"/bin/app", "--flag"}));
  EXPECT_FALSE(df.instructions[5].json_form);  // not valid JSON: the shell form
}

TEST(BuildParser, EscapeDirectiveChangesContinuation) {
  auto df = parse_dockerfile("# escape=`\n# syntax=docker/dockerfile:1\nFROM scratch\nRUN dir c:\\ `\n  /w\n", "D");
  EXPECT_EQ(df.escape, '`');
  ASSERT_EQ(df.instructions.size(), 2u);
  EXPECT_EQ(df.instructions[1].args, "dir c:\\   /w");
  // A directive after an ordinary comment is only a comment.
  auto df2 = parse_dockerfile("# hello\n# escape=`\nFROM scratch\n", "D");
  EXPECT_EQ(df2.escape, '\\');
}

TEST(BuildParser, Heredocs) {
  auto df = parse_dockerfile(
      "FROM scratch\n"
      "RUN <<EOF\n"
      "echo $HOME\n"
      "EOF\n"
      "COPY <<-'END' /etc/motd\n"
      "\t\tindented\n"
      "\tEND\n"
      "RUN cat <<A <<B > /x\n"
      "a\n"
      "A\n"
      "b\n"
      "B\n",
      "D");
  ASSERT_EQ(df.instructions.size(), 4u);
  ASSERT_EQ(df.instructions[1].heredocs.size(), 1u);
  EXPECT_EQ(df.instructions[1].heredocs[0].content, "echo $HOME\n");
  EXPECT_TRUE(df.instructions[1].heredocs[0].expand);
  const auto& h = df.instructions[2].heredocs.at(0);
  EXPECT_EQ(h.name, "END");
  EXPECT_FALSE(h.expand);
  EXPECT_TRUE(h.strip_tabs);
  EXPECT_EQ(h.content, "indented\n");
  ASSERT_EQ(df.instructions[3].heredocs.size(), 2u);
  EXPECT_EQ(df.instructions[3].heredocs[1].content, "b\n");
}

TEST(BuildParser, SyntaxErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of("FROM scratch\n  FORM x\n"), "Dockerfile:2:3: unknown instruction 'FORM'");
  EXPECT_EQ(error_of("FROM scratch\nRUN <<EOF\necho\n"), "Dockerfile:2:5: heredoc <<EOF is not terminated (no line 'EOF')");
  EXPECT_EQ(error_of("FROM scratch\nSHELL /bin/bash -c\n"),
            "Dockerfile:2:7: SHELL requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]");
  EXPECT_EQ(error_of("FROM scratch\nWORKDIR\n"), "Dockerfile:2:1: WORKDIR needs at least one argument");
  EXPECT_EQ(error_of("# escape=x\nFROM scratch\n"), "Dockerfile:1:10: invalid escape character 'x' (use \\ or `)");
  EXPECT_EQ(error_of("#  ESCAPE = x \nFROM scratch\n"), "Dockerfile:1:13: invalid escape character 'x' (use \\ or `)");
}

// Image configs and history are JSON (UTF-8): bytes that are not UTF-8 once failed only after
// the whole build, with nlohmann's message and no line.
TEST(BuildParser, TextThatIsNotUtf8NamesItsLineAndColumn) {
  EXPECT_EQ(error_of("FROM scratch\nVOLUME [\"/d\xff\"]\n"),
            "Dockerfile:2:12: invalid UTF-8 (byte 0xFF); a Dockerfile must be UTF-8");
  EXPECT_EQ(error_of("FROM scratch\nLABEL a=\xc3\n"), "Dockerfile:2:9: invalid UTF-8 (byte 0xC3); a Dockerfile must be UTF-8");
  EXPECT_EQ(error_of("FROM scratch\nLABEL a=\xc0\xaf\n"),
            "Dockerfile:2:9: invalid UTF-8 (byte 0xC0); a Dockerfile must be UTF-8");
  EXPECT_EQ(error_of("FROM scratch\nLABEL a=\xed\xa0\x80\n"),  // a UTF-16 surrogate
            "Dockerfile:2:9: invalid UTF-8 (byte 0xED); a Dockerfile must be UTF-8");
  auto df = parse_dockerfile("FROM scratch\nLABEL a=\"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82\"\n", "D");
  EXPECT_EQ(df.instructions.size(), 2u);
}

// Docker's JSON form: an array of strings; a JSON array of anything else is an error at its line,
// text that is not JSON is the shell form. HEALTHCHECK CMD reads its command the same way.
TEST(BuildParser, JsonFormIsCheckedAtItsLine) {
  EXPECT_EQ(error_of("FROM scratch\nVOLUME [\"/data\", 1]\n"),
            "Dockerfile:2:8: VOLUME: a JSON array must hold only strings, not 1");
  EXPECT_EQ(error_of("FROM scratch\nHEALTHCHECK --retries=2 CMD [\"a\", {}]\n"),
            "Dockerfile:2:29: HEALTHCHECK: a JSON array must hold only strings, not {}");
  auto df = parse_dockerfile(
      "FROM scratch\nHEALTHCHECK CMD [\"/bin/check\", \"-q\"]\nHEALTHCHECK cmd [\"/bin/x\",\nVOLUME [\"/a\"\n"
      "LABEL x=[1]\nHEALTHCHECK NONE\n",
      "D");
  EXPECT_TRUE(df.instructions.at(1).json_form);
  EXPECT_EQ(df.instructions[1].json_args, (std::vector<std::string>{"/bin/check", "-q"}));
  EXPECT_FALSE(df.instructions.at(2).json_form);  // not JSON: the shell form
  EXPECT_FALSE(df.instructions.at(3).json_form);
  EXPECT_FALSE(df.instructions.at(4).json_form);  // LABEL never takes the JSON form
  EXPECT_FALSE(df.instructions.at(5).json_form);
}

// A number no double holds inside the brackets (found by fuzz_dockerfile): not JSON to Docker's
// decoder either, so the shell form, never an escaped library exception.
TEST(BuildParser, AJsonNumberThatOverflowsLeavesTheShellForm) {
  auto df = parse_dockerfile("FROM scratch\nENTRYPOINT [[5e5555555555]]\nCMD [1e999999]\n", "D");
  ASSERT_EQ(df.instructions.size(), 3u);
  EXPECT_FALSE(df.instructions[1].json_form);
  EXPECT_EQ(df.instructions[1].args, "[[5e5555555555]]");
  EXPECT_FALSE(df.instructions[2].json_form);
}

TEST(BuildParser, ContinuationAtTheEndOfTheFileNamesItsLine) {
  EXPECT_EQ(error_of("FROM scratch\n\\"), "Dockerfile:2:1: line continuation '\\' with no instruction after it");
  EXPECT_EQ(error_of("FROM scratch\n  \\\n\n"), "Dockerfile:2:1: line continuation '\\' with no instruction after it");
  EXPECT_EQ(error_of("# escape=`\nFROM scratch\n`\n"), "Dockerfile:3:1: line continuation '`' with no instruction after it");
  // An instruction whose last line continues into the end of the file is still whole.
  auto df = parse_dockerfile("FROM scratch\nRUN echo hi \\", "D");
  ASSERT_EQ(df.instructions.size(), 2u);
  EXPECT_EQ(df.instructions[1].args, "echo hi");
}

// Directive lines and heredoc names of any length are read without recursion (50-60 KB ones once
// overflowed the stack inside std::regex).
TEST(BuildParser, LongDirectivesAndHeredocNames) {
  std::string long_value(60000, 'x');
  auto df = parse_dockerfile("# syntax=" + long_value + "\nFROM scratch\n", "D");
  EXPECT_EQ(df.instructions.size(), 1u);
  EXPECT_EQ(error_of("# escape=" + long_value + "\nFROM scratch\n").substr(0, 43), "Dockerfile:1:10: invalid escape character '");
  std::string name(50000, 'E');
  auto h = parse_dockerfile("FROM scratch\nRUN <<" + name + "\necho\n" + name + "\n", "D");
  ASSERT_EQ(h.instructions.at(1).heredocs.size(), 1u);
  EXPECT_EQ(h.instructions[1].heredocs[0].name, name);
  EXPECT_TRUE(h.instructions[1].heredoc_only);
  std::string spaces(50000, ' ');
  auto two = parse_dockerfile("FROM scratch\nRUN cat <<'A'" + spaces + "<<-B >x\nA\nB\n", "D");
  EXPECT_EQ(two.instructions.at(1).heredocs.size(), 2u);
}

TEST(BuildParser, HeredocOpeners) {
  auto df = parse_dockerfile(
      "FROM scratch\n"
      "RUN cat <<<here <<\"Q\" <<'U <<-T\n"
      "q\n"
      "Q\n"
      "\tt\n"
      "\tT\n"
      "RUN <<EOF  \n"
      "EOF\n",
      "D");
  const auto& hs = df.instructions.at(1).heredocs;
  ASSERT_EQ(hs.size(), 2u);  // "<<<here" is a here-string, "<<'U" has no closing quote
  EXPECT_EQ(hs[0].name, "Q");
  EXPECT_FALSE(hs[0].expand);
  EXPECT_EQ(hs[1].name, "T");
  EXPECT_TRUE(hs[1].strip_tabs);
  EXPECT_EQ(hs[1].content, "t\n");
  EXPECT_FALSE(df.instructions[1].heredoc_only);
  EXPECT_TRUE(df.instructions.at(2).heredoc_only);
}

TEST(BuildWords, QuotesAndExpansion) {
  Vars v{{"A", "1"}, {"EMPTY", ""}, {"SP", "x y"}};
  Location at{"D", 1, 1};
  WordOptions o;
  EXPECT_EQ(split_words("$A ${A}b '$A' \"$A $SP\" a\\ b", v, o, at), (std::vector<std::string>{"1", "1b", "$A", "1 x y", "a b"}));
  EXPECT_EQ(process_word("${NOPE:-def} ${EMPTY:-e} ${EMPTY-e} ${A:+set} ${NOPE:+set}x", v, o, at), "def e  set x");
  EXPECT_EQ(split_words("$SP", v, o, at).size(), 1u);  // expansions are never split
  EXPECT_THROW(process_word("${NOPE:?must be set}", v, o, at), BuildError);
  EXPECT_THROW(split_words("\"open", v, o, at), BuildError);
  auto kv = parse_key_values("K1=\"a b\" K2=$A K3=", v, o, at, true);
  ASSERT_EQ(kv.size(), 3u);
  EXPECT_EQ(kv[0], (std::pair<std::string, std::string>{"K1", "a b"}));
  EXPECT_EQ(kv[1].second, "1");
  EXPECT_EQ(kv[2].second, "");
  auto legacy = parse_key_values("NAME value with spaces", v, o, at, true);
  EXPECT_EQ(legacy.at(0), (std::pair<std::string, std::string>{"NAME", "value with spaces"}));
  EXPECT_THROW(parse_key_values("NAME value", v, o, at, false), BuildError);
}

TEST(BuildIgnore, DockerignorePatterns) {
  auto r = IgnoreRules::parse("# comment\n*.log\n/build\n**/tmp\ndocs/**/*.md\n!docs/keep.md\n", ".dockerignore");
  EXPECT_TRUE(r.excluded("a.log"));
  EXPECT_FALSE(r.excluded("dir/a.log"));  // '*' does not cross '/'
  EXPECT_TRUE(r.excluded("build"));
  EXPECT_TRUE(r.excluded("build/out/x.o"));  // inside an excluded folder
  EXPECT_TRUE(r.excluded("tmp"));
  EXPECT_TRUE(r.excluded("a/b/tmp/c"));
  EXPECT_TRUE(r.excluded("docs/x/y/z.md"));
  EXPECT_TRUE(r.excluded("docs/z.md"));
  EXPECT_FALSE(r.excluded("docs/keep.md"));
  EXPECT_FALSE(r.excluded("src/main.c"));
  EXPECT_TRUE(r.has_exceptions());
}

TEST(BuildIgnore, ClassesEscapesAndSingleCharacters) {
  auto r = IgnoreRules::parse("f?.txt\n[a-c]x\n[!0-9]y\nlit\\*\n**\n!keep/**/z\n", ".dockerignore");
  EXPECT_TRUE(r.excluded("keep/a/b"));  // "**" matches everything
  auto q = IgnoreRules::parse("f?.txt\n[a-c]x\n[!0-9]y\nlit\\*\n", ".dockerignore");
  EXPECT_TRUE(q.excluded("f1.txt"));
  EXPECT_FALSE(q.excluded("f12.txt"));
  EXPECT_FALSE(q.excluded("f/.txt"));  // '?' does not match '/'
  EXPECT_TRUE(q.excluded("bx"));
  EXPECT_FALSE(q.excluded("dx"));
  EXPECT_TRUE(q.excluded("zy"));
  EXPECT_FALSE(q.excluded("5y"));
  EXPECT_TRUE(q.excluded("lit*"));
  EXPECT_FALSE(q.excluded("lit1"));
  auto dirs = IgnoreRules::parse("a/**/b\n", ".dockerignore");
  EXPECT_TRUE(dirs.excluded("a/b"));
  EXPECT_TRUE(dirs.excluded("a/x/y/b"));
  EXPECT_FALSE(dirs.excluded("a/xb"));
  try {
    IgnoreRules::parse("ok\n[abc\n", ".dockerignore");
    ADD_FAILURE() << "an unterminated class was accepted";
  } catch (const BuildError& e) {
    EXPECT_EQ(std::string(e.what()), ".dockerignore:2: pattern '[abc': unterminated '['");
  }
}

// Patterns and paths of any length are matched without recursion (a 100 KB pattern once
// overflowed the stack inside std::regex).
TEST(BuildIgnore, LongPatternsAndPaths) {
  std::string huge(100000, 'a');
  auto r = IgnoreRules::parse("*" + huge + "*\n" + huge + "/**/x\n", ".dockerignore");
  EXPECT_FALSE(r.excluded("b" + std::string(4000, 'a') + "c"));
  EXPECT_FALSE(r.excluded("src/main.c"));
  // Paths are at most PATH_MAX (4096) long.
  std::string name(1500, 'a');
  auto q = IgnoreRules::parse("*" + name + "*\n" + name + "/**/x\n", ".dockerignore");
  EXPECT_TRUE(q.excluded("b" + name + "c"));
  EXPECT_FALSE(q.excluded("b" + name.substr(1) + "c"));
  EXPECT_TRUE(q.excluded(name + "/d/" + name + "/x"));
  std::string deep;
  for (int i = 0; i < 2000; ++i) deep += "d/";
  EXPECT_FALSE(q.excluded(deep + "y"));
  EXPECT_TRUE(q.excluded("b" + name + "c/" + deep + "y"));  // a parent matches
}

TEST(BuildPaths, ResolveInRootNeverLeavesTheRoot) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("nemokit-root-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "usr/lib");
  fs::create_symlink("usr/lib", root / "lib");
  fs::create_symlink("/etc", root / "abs");
  fs::create_symlink("../../../../..", root / "up");
  EXPECT_EQ(resolve_in_root(root, "/lib/x", true), root / "usr/lib/x");
  EXPECT_EQ(resolve_in_root(root, "abs/passwd", true), root / "etc/passwd");
  EXPECT_EQ(resolve_in_root(root, "up/etc/shadow", true), root / "etc/shadow");
  EXPECT_EQ(resolve_in_root(root, "../../x", true), root / "x");
  EXPECT_EQ(resolve_in_root(root, "lib", false), root / "lib");
  std::string clean;
  EXPECT_FALSE(clean_relative("../x", clean));
  EXPECT_TRUE(clean_relative("/a/./b/../c", clean));
  EXPECT_EQ(clean, "a/c");
  fs::remove_all(root);
}

TEST(BuildPaths, MkdirInRootFollowsSymlinksAndStaysInside) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("nemokit-mkdir-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "usr/lib");
  fs::create_symlink("usr/lib", root / "lib");
  fs::create_symlink("/usr", root / "abs");
  fs::create_symlink("../../..", root / "up");
  EXPECT_EQ(mkdir_in_root(root, "/lib/a/b", getuid(), getgid()), root / "usr/lib/a/b");
  EXPECT_TRUE(fs::is_directory(root / "usr/lib/a/b"));
  EXPECT_EQ(mkdir_in_root(root, "abs/c", getuid(), getgid()), root / "usr/c");
  EXPECT_EQ(mkdir_in_root(root, "up/up/d", getuid(), getgid()), root / "d");
  EXPECT_EQ(mkdir_in_root(root, "x/../y", getuid(), getgid()), root / "y");
  EXPECT_TRUE(fs::is_directory(root / "x"));
  { std::ofstream(root / "file") << "x"; }
  EXPECT_THROW(mkdir_in_root(root, "/file/sub", getuid(), getgid()), BuildError);
  fs::remove_all(root);
}

// A COPY destination 1,000 folders deep once took over a minute: every level re-resolved the
// whole path from the root. Each level now costs one step.
TEST(BuildPaths, DeepPathsResolveLevelByLevel) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("nemokit-deep-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "/d";
  fs::path made = mkdir_in_root(root, deep + "/", getuid(), getgid());
  EXPECT_TRUE(fs::is_directory(made));
  EXPECT_EQ(made.string(), root.string() + deep);
  EXPECT_EQ(resolve_in_root(root, deep + "/../e", true).string(), root.string() + deep.substr(2) + "/e");
  fs::remove_all(root);
}

TEST(BuildUsers, IdsOutOfRangeOrMalformedNameTheirSource) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("nemokit-users-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "etc");
  { std::ofstream(root / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\nbad:x:12x:0::/:/bin/sh\n"; }
  { std::ofstream(root / "etc/group") << "root:x:0:\nwide:x:99999999999:\n"; }
  auto error = [&](const std::string& spec) -> std::string {
    try {
      resolve_user(root, spec);
    } catch (const BuildError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(resolve_user(root, "4294967294").uid, 4294967294u);
  EXPECT_EQ(error("99999999999999999999"), "user id 99999999999999999999 is out of range (at most 4294967294)");
  EXPECT_EQ(error("4294967295"), "user id 4294967295 is out of range (at most 4294967294)");
  EXPECT_EQ(error("root:99999999999999999999"), "group id 99999999999999999999 is out of range (at most 4294967294)");
  EXPECT_EQ(error("bad"), "/etc/passwd: the entry for 'bad' has id '12x', not a number up to 4294967294");
  EXPECT_EQ(error("root:wide"), "/etc/group: the entry for 'wide' has id '99999999999', not a number up to 4294967294");
  EXPECT_NO_THROW(check_user_spec("app:1000"));
  EXPECT_THROW(check_user_spec("1:99999999999999999999"), BuildError);
  fs::remove_all(root);
}

TEST(BuildRegistry, References) {
  auto r = parse_reference("debian");
  EXPECT_EQ(r.registry, "registry-1.docker.io");
  EXPECT_EQ(r.repository, "library/debian");
  EXPECT_EQ(r.reference, "latest");
  r = parse_reference("localhost:5000/team/img:v1");
  EXPECT_EQ(r.registry, "localhost:5000");
  EXPECT_EQ(r.repository, "team/img");
  EXPECT_EQ(r.reference, "v1");
  r = parse_reference("nvcr.io/nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04");
  EXPECT_EQ(r.registry, "nvcr.io");
  EXPECT_EQ(r.reference, "13.0.0-cudnn-runtime-ubuntu24.04");
  std::string d = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(parse_reference("user/app@" + d).reference, d);
  EXPECT_THROW(parse_reference("Bad/Name"), BuildError);
}

TEST(BuildRegistry, CredentialsFile) {
  namespace fs = std::filesystem;
  fs::path f = fs::temp_directory_path() / ("nemokit-cred-" + std::to_string(getpid()));
  std::ofstream(f) << "machine nvcr.io login $oauthtoken password secret1\n"
                      "# a comment\n"
                      "machine localhost:5000\n  login bob\n  password two\nmachine localhost login carol password three\n";
  auto c = find_credentials(f, "nvcr.io");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->login, "$oauthtoken");
  EXPECT_EQ(c->password, "secret1");
  EXPECT_EQ(find_credentials(f, "localhost:5000")->login, "bob");
  EXPECT_EQ(find_credentials(f, "localhost:6000")->login, "carol");
  EXPECT_FALSE(find_credentials(f, "example.com"));
  fs::remove(f);
}

TEST(BuildRegistry, AuthChallengeParams) {
  auto p = auth_challenge_params(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull")");
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(p["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(p["service"], "registry.docker.io");
  EXPECT_EQ(p["scope"], "repository:library/debian:pull");
  // Spaces after commas, a bare word and an unterminated value end cleanly.
  p = auth_challenge_params(R"(Bearer error=invalid, realm="r", service="s", scope="x)");
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p["realm"], "r");
  EXPECT_EQ(p["service"], "s");
  // A hostile header of megabytes is parsed in one pass (a backtracking matcher overflowed the
  // stack on such input).
  std::string huge = "Bearer realm=\"" + std::string(4 << 20, 'a') + "\"," + std::string(1 << 20, 'k') + "=\"";
  p = auth_challenge_params(huge);
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(p["realm"].size(), size_t(4 << 20));
}

TEST(BuildIgnore, ExpandSourceSkipsIgnoredFilesEvenWithExceptions) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("nemokit-ctx-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "logs");
  for (auto f : {"a.log", "keep.log", "b.txt", "logs/x.log"}) std::ofstream(root / f) << f;
  auto rules = IgnoreRules::parse("*.log\n!keep.log\n", ".dockerignore");
  Location at{"Dockerfile", 2, 6};
  EXPECT_EQ(expand_source(root, "*", &rules, at), (std::vector<std::string>{"b.txt", "keep.log", "logs"}));
  EXPECT_EQ(expand_source(root, "keep.log", &rules, at), (std::vector<std::string>{"keep.log"}));
  try {
    expand_source(root, "a.log", &rules, at);
    ADD_FAILURE() << "an ignored file was copied";
  } catch (const BuildError& e) {
    EXPECT_EQ(std::string(e.what()),
              "Dockerfile:2:6: a.log: no such file or directory in the build context (excluded by .dockerignore)");
  }
  EXPECT_THROW(expand_source(root, "../etc/passwd", &rules, at), BuildError);
  // A wildcard that matches nothing gives nothing; the COPY step fails only when all its sources do.
  EXPECT_EQ(expand_source(root, "nothing*", &rules, at), std::vector<std::string>{});
  EXPECT_EQ(expand_source(root, "a*.log", &rules, at), std::vector<std::string>{});
  fs::remove_all(root);
}

// Tags of any length are checked without recursion (std::regex once overflowed the stack on long
// arguments).
TEST(BuildRequest, TagsAreCheckedAtAnyLength) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("nemokit-request-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto request = [&](const std::string& tag) {
    nlohmann::json j = {
        {"tag", tag}, {"dockerfile_text", "FROM scratch\n"}, {"build_cache_dir", dir.string()}, {"context", dir.string()}};
    return parse_build_request(j.dump(), dir);
  };
  std::string long_tag = "a" + std::string(100000, '.');
  EXPECT_EQ(request(long_tag).tag, long_tag);
  EXPECT_EQ(request("Omni3-sft_1.0").tag, "Omni3-sft_1.0");
  for (std::string bad : {std::string(""), std::string("-a"), std::string(".a"), "a" + std::string(100000, 'b') + "/"})
    EXPECT_THROW(request(bad), BuildError) << bad.substr(0, 20);
  fs::remove_all(dir);
}

// A registry's answers are read without trusting them: each malformed one is named by where it
// came from and the key at fault (a wrong type once surfaced as nlohmann's type_error text, seen
// while writing fuzz_registry_replies), and a token with a line break never reaches an HTTP header.
TEST(BuildRegistry, MalformedRepliesNameTheKey) {
  auto error_of = [](auto&& body) {
    try {
      body();
    } catch (const BuildError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(token_of_reply(R"({"token": "abc"})", "https://auth/token"), "abc");
  EXPECT_EQ(token_of_reply(R"({"access_token": "xyz"})", "https://auth/token"), "xyz");
  EXPECT_EQ(error_of([] { token_of_reply(R"({"token": 5})", "https://auth/token"); }),
            "https://auth/token: token answer: \"token\" is number, not a string");
  EXPECT_EQ(error_of([] { token_of_reply("[1]", "R"); }), "R: the token answer is not a JSON object");
  EXPECT_EQ(error_of([] { token_of_reply("{}", "R"); }), "R: no token in the answer");
  EXPECT_EQ(error_of([] { token_of_reply(R"({"token": "a\r\nX-Evil: 1"})", "R"); }), "R: the token holds a line break");

  const std::string good = "sha256:" + std::string(64, 'a');
  auto list = [](const std::string& manifests) { return read_manifest_reply(R"({"manifests": )" + manifests + "}", "img"); };
  const nemokit::oci::Platform amd64{"linux", "amd64", ""};
  EXPECT_TRUE(list("[]").is_list);
  EXPECT_EQ(platform_manifest_digest(list(R"([{"platform": {"os": "linux", "architecture": "arm64"}, "digest": "x"},
                                                {"platform": {"os": "linux", "architecture": "amd64"}, "digest": ")" +
                                          good + "\"}]"),
                                     amd64, "img"),
            good);
  EXPECT_EQ(error_of([&] { platform_manifest_digest(list(R"("x")"), amd64, "img"); }),
            "img: \"manifests\" of the manifest list is not an array");
  EXPECT_EQ(error_of([&] { platform_manifest_digest(list("[7]"), amd64, "img"); }),
            "img: manifests[0] is number, not a descriptor object");
  EXPECT_EQ(error_of([&] { platform_manifest_digest(list(R"([{"platform": {"os": 1}}])"), amd64, "img"); }),
            "img: manifests[0].platform: \"os\" is number, not a string");
  EXPECT_EQ(error_of([&] {
              platform_manifest_digest(list(R"([{"platform": {"os": "linux", "architecture": "amd64"}, "digest": "../x"}])"),
                                       amd64, "img");
            }),
            "img: manifests[0]: unsupported digest '../x'");
  EXPECT_EQ(error_of([&] { platform_manifest_digest(list("[]"), amd64, "img"); }),
            "img: no linux/amd64 image in the manifest list");
  // Another platform is picked as asked, a variant (arm64's v8) normalized; a missing one is
  // named with those the list has.
  const std::string other = "sha256:" + std::string(64, 'b');
  const std::string two = R"([{"platform": {"os": "linux", "architecture": "amd64"}, "digest": ")" + good +
                          R"("}, {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}, "digest": ")" + other +
                          "\"}]";
  EXPECT_EQ(platform_manifest_digest(list(two), nemokit::oci::parse_platform("linux/arm64"), "img"), other);
  EXPECT_EQ(error_of([&] { platform_manifest_digest(list(two), nemokit::oci::parse_platform("linux/s390x"), "img"); }),
            "img: no linux/s390x image in the manifest list (it has linux/amd64, linux/arm64/v8)");

  auto manifest = [](const std::string& text) { return read_manifest_reply(text, "img"); };
  EXPECT_EQ(error_of([&] { manifest("[]"); }), "img: manifest is not a JSON object");
  EXPECT_EQ(error_of([&] { manifest(R"({"mediaType": 3})"); }), "img: manifest: \"mediaType\" is number, not a string");
  EXPECT_EQ(image_manifest_blobs(
                manifest(R"({"config": {"digest": ")" + good + R"("}, "layers": [{"digest": ")" + good + "\"}]}"), "img"),
            (std::vector<std::string>{good, good}));
  EXPECT_EQ(error_of([&] { image_manifest_blobs(manifest(R"({"config": "c", "layers": []})"), "img"); }),
            "img: config is string, not a descriptor object");
  EXPECT_EQ(
      error_of([&] { image_manifest_blobs(manifest(R"({"config": {"digest": ")" + good + R"("}, "layers": {}})"), "img"); }),
      "img: \"layers\" of the manifest is not an array");
  EXPECT_EQ(error_of([&] {
              image_manifest_blobs(manifest(R"({"config": {"digest": ")" + good + R"("}, "layers": [{"digest": 1}]})"), "img");
            }),
            "img: layers[0]: \"digest\" is number, not a string");
  EXPECT_EQ(error_of([&] { image_manifest_blobs(manifest(R"({"layers": []})"), "img"); }), "img: not an image manifest");
}

TEST(BuildPlatform, ParsedAsDockerSpellsThem) {
  using nemokit::oci::parse_platform;
  using nemokit::oci::Platform;
  EXPECT_EQ(parse_platform("linux/arm64"), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(parse_platform("linux/arm64/v8"), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(parse_platform("arm64"), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(parse_platform("aarch64"), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(parse_platform("Linux/AMD64"), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(parse_platform("x86_64"), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(parse_platform("linux/arm"), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(parse_platform("linux/arm/v6").str(), "linux/arm/v6");
  EXPECT_EQ(parse_platform("linux/arm64").to_json(), nlohmann::json({{"architecture", "arm64"}, {"os", "linux"}}));
  EXPECT_EQ(parse_platform("linux/arm/v7").to_json(),
            nlohmann::json({{"architecture", "arm"}, {"os", "linux"}, {"variant", "v7"}}));
  for (const char* bad : {"linux/mips", "windows/amd64", "darwin/arm64", "linux/arm64/v9", "", "linux/", "a/b/c/d"}) {
    try {
      parse_platform(bad);
      ADD_FAILURE() << bad;
    } catch (const nemokit::oci::Error& e) {
      EXPECT_EQ(std::string(e.what()), "unknown platform '" + std::string(bad) +
                                           "' (known: linux/amd64, linux/arm64, linux/arm/v6, linux/arm/v7, linux/386, "
                                           "linux/ppc64le, linux/s390x, linux/riscv64)");
    }
  }
  // Configs and index entries: a missing os is linux, arm64's v8 is arm64.
  EXPECT_TRUE(nemokit::oci::platform_matches(nlohmann::json({{"architecture", "arm64"}, {"variant", "v8"}}),
                                             parse_platform("linux/arm64")));
  EXPECT_FALSE(nemokit::oci::platform_matches(nlohmann::json({{"architecture", "amd64"}, {"os", "linux"}}),
                                              parse_platform("linux/arm64")));
  EXPECT_FALSE(nemokit::oci::platform_matches(nlohmann::json("linux/arm64"), parse_platform("linux/arm64")));
  EXPECT_EQ(nemokit::oci::platform_of_config(nlohmann::json::object()), std::nullopt);
  EXPECT_EQ(nemokit::oci::platform_of_config(nlohmann::json({{"architecture", "aarch64"}}))->str(), "linux/arm64");
}

// Whether RUN can run another platform's programs is read from binfmt_misc: a folder laid out
// as the kernel's stands in for /proc/sys/fs/binfmt_misc.
TEST(BuildPlatform, ForeignProgramsNeedARegisteredEmulator) {
  using nemokit::oci::Platform;
  namespace fs = std::filesystem;
  const Platform host = nemokit::oci::host_platform();
  EXPECT_EQ(foreign_exec_problem(host, "/nonexistent"), std::nullopt);
  const Platform foreign = nemokit::oci::parse_platform(host.architecture == "arm64" ? "linux/amd64" : "linux/arm64");
  const std::string qemu = host.architecture == "arm64" ? "qemu-x86_64" : "qemu-aarch64";
  fs::path dir = fs::temp_directory_path() / ("nemokit-binfmt-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto problem = [&] { return foreign_exec_problem(foreign, dir.string()).value_or("runs"); };
  EXPECT_NE(problem().find("cannot run " + foreign.str() + " programs: binfmt_misc is not mounted at " + dir.string()),
            std::string::npos)
      << problem();
  EXPECT_NE(problem().find("install qemu-user-static"), std::string::npos) << problem();
  std::ofstream(dir / "status") << "enabled\n";
  EXPECT_NE(problem().find("no binfmt_misc handler " + (dir / qemu).string() + " is registered"), std::string::npos) << problem();
  std::ofstream(dir / qemu) << "enabled\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\nflags: PC\noffset 0\n";
  EXPECT_NE(problem().find("registered without the F flag"), std::string::npos) << problem();
  std::ofstream(dir / qemu) << "disabled\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\nflags: PFC\noffset 0\n";
  EXPECT_NE(problem().find("is disabled"), std::string::npos) << problem();
  std::ofstream(dir / qemu) << "enabled\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\nflags: PFC\noffset 0\n";
  EXPECT_EQ(problem(), "runs");
  fs::remove_all(dir);
}
