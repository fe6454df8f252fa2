// The training example, run as a user runs it: short runs, resume, determinism, outputs, bad input.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "xgrad.h"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

struct Run {
    int status;
    std::string output;   // stdout and stderr together
};

Run run_program(const std::string& program, const std::string& args, const std::string& environment)
{
    const std::string command = environment + " " + program + " " + args + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

Run train_lm(const std::string& args, const std::string& environment = "") { return run_program(XGRAD_TRAIN_LM, args, environment); }
Run train_gpt(const std::string& args, const std::string& environment = "") { return run_program(XGRAD_TRAIN_GPT, args, environment); }

fs::path scratch_path(const std::string& name)   // scratch's folder, left as it is
{
    return fs::temp_directory_path() / ("xgrad_train_lm_" + std::to_string(::getpid())) / name;
}

fs::path scratch(const std::string& name)
{
    fs::path dir = fs::temp_directory_path() / ("xgrad_train_lm_" + std::to_string(::getpid())) / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::string read(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

double number_after(const std::string& text, const std::string& label)
{
    std::smatch m;
    REQUIRE(std::regex_search(text, m, std::regex(label + " ([0-9.]+)")));
    return std::stod(m[1]);
}

const std::string quick = " --steps 200 --eval-interval 100 --eval-batches 4 --batch 16 --sample-length 20";
const std::string tiny = " --steps 10 --eval-interval 5 --eval-batches 1 --batch 8 --sample-length 5";

// Starts train_lm with `args`, stdout and stderr into `log`; `in_child` runs in the child first (to
// set a limit, say). Returns its process id: exec replaces the shell, so signals reach train_lm.
pid_t spawn(const std::string& args, const fs::path& log, void (*in_child)() = nullptr)
{
    const std::string command = "exec " + std::string(XGRAD_TRAIN_LM) + " " + args + " > " + log.string() + " 2>&1";
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (in_child) in_child();
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

// Its exit status, waiting at most `limit`: past it, the process is killed and the status is -1
// (a hang must fail the test, not stall the suite).
int wait_at_most(pid_t pid, std::chrono::seconds limit)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
}

// The files of a folder (its hidden ones too), by name.
std::vector<std::string> listing(const fs::path& dir)
{
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

TEST_CASE("a short training run drives the validation loss well below its start and below the unigram entropy")
{
    fs::path out = scratch("short");
    Run r = train_lm(quick + " --steps 400 --out " + out.string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    const double start = number_after(r.output, "validation loss before training:");
    const double end = number_after(r.output, "final validation loss");
    const double entropy = number_after(r.output, "vs unigram entropy");
    CHECK(start > 4.0);            // about log(70): the model knows nothing yet
    CHECK(end < start - 1.2);
    CHECK(end < entropy - 0.3);
    CHECK_THAT(r.output, Contains("nearest neighbours by cosine") && Contains("(chance "));
}

TEST_CASE("a text without line breaks trains too, cut at any offset")
{
    fs::path dir = scratch("one_line");
    std::string text;
    for (int i = 0; i < 400; ++i) text += "the cat sat on the mat and the dog ate the log ";
    std::ofstream(dir / "one_line.txt") << text;
    Run r = train_lm(quick + " --corpus " + (dir / "one_line.txt").string() + " --out " + dir.string());
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(number_after(r.output, "final validation loss") < 2.0);
}

TEST_CASE("the output folder holds a checkpoint, Projector TSVs, the loss CSV and a self-contained report")
{
    fs::path out = scratch("outputs");
    Run r = train_lm(quick + " --out " + out.string());
    REQUIRE(r.status == 0);
    std::istringstream vectors(read(out / "vectors.tsv")), metadata(read(out / "metadata.tsv"));
    std::size_t rows = 0;
    for (std::string line; std::getline(vectors, line); ++rows) {
        CHECK(std::count(line.begin(), line.end(), '\t') == 63);   // n_embd = 64 values
    }
    CHECK(rows == 70);                                              // one per character of the vocabulary
    std::size_t metadata_rows = 0;
    std::string header;
    std::getline(metadata, header);
    CHECK(header == "token\tclass");
    for (std::string line; std::getline(metadata, line); ++metadata_rows) CHECK(line.find('\t') != std::string::npos);
    CHECK(metadata_rows == rows);
    const std::string losses = read(out / "losses.csv");
    CHECK(losses.rfind("step,train_loss,val_loss\n", 0) == 0);
    CHECK(std::count(losses.begin(), losses.end(), '\n') == 201);
    const std::string html = read(out / "report.html");
    CHECK_THAT(html, Contains("<svg") && Contains("validation loss") && Contains("before training") &&
                         Contains("after training"));
    CHECK(html.find("<script") == std::string::npos);               // no scripts,
    CHECK(html.find("src=") == std::string::npos);                  // no external resources
    CHECK(fs::file_size(out / "checkpoint.safetensors") > 4 * (70 * 64 + 64 * 64));
}

TEST_CASE("resuming from a checkpoint continues bit-exactly")
{
    fs::path straight = scratch("straight"), split = scratch("split");
    REQUIRE(train_lm(quick + " --out " + straight.string()).status == 0);
    REQUIRE(train_lm(quick + " --steps 120 --out " + split.string()).status == 0);
    Run resumed = train_lm(quick + " --resume " + (split / "checkpoint.safetensors").string() + " --out " + split.string());
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    CHECK(read(straight / "losses.csv") == read(split / "losses.csv"));   // every loss, to 9 digits
    CHECK(read(straight / "vectors.tsv") == read(split / "vectors.tsv"));
}

TEST_CASE("the same seed gives the same losses, on 1 thread and on 2")
{
    // (B, T, hidden) activations of 2^20 floats: the MLP's element-wise ops, bias sums and products
    // split across two threads
    const std::size_t B = 32, T = 128, hidden = 256;
    REQUIRE(B * T * hidden >= 2 * xgrad::parallel_floats);
    const std::string big = " --steps 12 --eval-interval 6 --eval-batches 2 --sample-length 20 --batch " +
                            std::to_string(B) + " --block-size " + std::to_string(T) + " --hidden " + std::to_string(hidden);
    fs::path one = scratch("one"), two = scratch("two");
    REQUIRE(train_lm(big + " --threads 1 --out " + one.string()).status == 0);
    REQUIRE(train_lm(big + " --threads 2 --out " + two.string()).status == 0);
    CHECK(read(one / "losses.csv") == read(two / "losses.csv"));
}

TEST_CASE("bad input gives a one-line message and a non-zero exit, and no half-written checkpoint")
{
    fs::path dir = scratch("bad");
    std::ofstream(dir / "empty.txt").close();
    std::ofstream(dir / "short.txt") << "abc\ndef\n";
    std::ofstream(dir / "latin1.txt") << "caf\xe9\n";
    std::ofstream(dir / "one.txt") << "a";
    fs::path trained = scratch("trained");
    REQUIRE(train_lm(quick + " --steps 10 --out " + trained.string()).status == 0);
    const std::string checkpoint = (trained / "checkpoint.safetensors").string();
    const std::string before = read(checkpoint);
    auto edited = [&](const std::string& key, const std::string& value) {   // the checkpoint, one metadata value changed
        xgrad::io::Safetensors file = xgrad::io::load_safetensors(checkpoint);
        file.metadata[key] = value;
        const std::string path = (dir / (key + ".safetensors")).string();
        xgrad::io::save_safetensors(path, file.tensors, file.metadata);
        return path;
    };

    struct Case {
        std::string args, message;
    };
    for (const auto& c : std::vector<Case>{
             {"--corpus /no/such/file.txt", "cannot open '/no/such/file.txt'"},
             {"--corpus " + (dir / "empty.txt").string(), "is empty"},
             {"--corpus " + dir.string(), "is not a regular file"},
             {"--corpus " + (dir / "short.txt").string(), "too few for block_size 64"},
             {"--corpus " + (dir / "latin1.txt").string(), "is not UTF-8 text: invalid UTF-8 at byte offset 3"},
             {"--no-such-flag", "--no-such-flag"},
             {"--steps many", "--steps: expected a number, got 'many'"},
             {"--steps -5", "--steps: must be positive, got -5"},
             {"--min-lr-ratio 2", "--min-lr-ratio: Value 2 not in range"},
             {"--out /etc/hostname/sub", "cannot create the output folder"},
             {"--steps 20 --n-embd 32 --resume " + checkpoint + " --out " + dir.string(), "holds a model with"},
             {"--resume " + (dir / "short.txt").string() + " --out " + dir.string(), "is not a safetensors file"},
             {"--resume " + edited("step", "abc") + " --out " + dir.string(), "has step = 'abc', expected a whole number of steps"},
             {"--resume " + edited("train_loss", "10:x;") + " --out " + dir.string(),
              "has an entry '10:x' in train_loss, expected step:loss"},
             // flags that parse as numbers but train nothing, and integers out of range
             {"--lr inf", "--lr: expected a finite number, got inf"},
             {"--lr nan", "--lr: expected a finite number, got nan"},
             {"--init-std inf", "--init-std: expected a finite number, got inf"},
             {"--init-std 1e39", "--init-std: must be at most"},
             {"--min-lr-ratio nan", "--min-lr-ratio: expected a finite number, got nan"},
             {"--seed -1", "--seed: must be 0 or more, got -1"},
             {"--seed 99999999999999999999", "--seed: must be at most 18446744073709551615, got 99999999999999999999"},
             {"--steps 99999999999999999999", "--steps: must be at most 9223372036854775807"},
             {"--batch 2.5", "--batch: expected a whole number, got 2.5"},
             {"--sample-length -1", "--sample-length: must be 0 or more, got -1"},
             // configurations too large for the memory: the figure and the flag to lower, not std::bad_alloc
             {"--batch 100000000 --out " + dir.string(), "lower --batch"},
             {"--n-embd 100000000 --out " + dir.string(), "lower --batch or --n-embd"},
             {"--corpus " + (dir / "one.txt").string() + " --out " + dir.string(), "has 1 character, too few"},
             // resuming with a seed or batch size other than the checkpoint's
             {"--seed 7 --resume " + checkpoint + " --out " + dir.string(),
              "was trained with --seed 1337, and this run gives --seed 7; it cannot change on resume"},
             {"--batch 8 --resume " + checkpoint + " --out " + dir.string(), "was trained with --batch 16"},
         }) {
        INFO(c.args);
        Run r = train_lm(c.args);
        CHECK(r.status != 0);
        CHECK_THAT(r.output, Contains(c.message));
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') <= 2);   // the message, and maybe a blank line
    }
    CHECK(read(checkpoint) == before);
}

TEST_CASE("train_gpt: bad flags, prompts and checkpoints are refused before any work, each naming what was wrong")
{
    fs::path dir = scratch("gpt_bad");
    std::string words;
    for (int i = 0; i < 400; ++i) words += i % 3 ? "the cat sat\n" : "on the mat\n";
    std::ofstream(dir / "corpus.txt") << words;
    std::string other = words;   // as many characters, one of them another: its ids mean other characters
    std::replace(other.begin(), other.end(), 'c', 'k');
    std::ofstream(dir / "other.txt") << other;
    const std::string small = " --n-layer 1 --n-embd 16 --n-head 2 --eval-iters 1 --eval-interval 2 --max-new-tokens 5 --batch 2"
                              " --block-size 16 --corpus " + (dir / "corpus.txt").string();
    fs::path trained = dir / "trained";
    const Run first = train_gpt(small + " --steps 4 --out " + trained.string());
    INFO(first.output);
    REQUIRE(first.status == 0);
    const std::string checkpoint = (trained / "checkpoint.safetensors").string();
    const std::string before = read(checkpoint);
    auto edited = [&](const std::string& name, auto&& change) {   // the checkpoint, changed
        xgrad::io::Safetensors file = xgrad::io::load_safetensors(checkpoint);
        change(file);
        const std::string path = (dir / (name + ".safetensors")).string();
        xgrad::io::save_safetensors(path, file.tensors, file.metadata);
        return path;
    };
    auto step = [&](const std::string& text) { return edited("step" + text, [&](auto& f) { f.metadata["step"] = text; }); };
    const std::string nan = edited("nan", [](auto& f) { f.tensors[0].second.mutable_data_ptr()[0] = std::nanf(""); });
    const std::string bare = edited("bare", [](auto& f) { f.metadata.clear(); });
    fs::create_symlink(dir / "no" / "such" / "folder", dir / "dangling");

    struct Case {
        std::string args, message;
    };
    const std::string out = " --out " + (dir / "out").string();
    for (const auto& c : std::vector<Case>{
             {small + " --min-lr 0.01 --lr 0.001" + out, "--min-lr 0.01 is above --lr 0.001: the cosine schedule decays from --lr "
                                                         "down to --min-lr"},
             {small + " --prompt ''" + out, "--prompt is empty"},
             {small + " --prompt \"$(printf '\\377')\"" + out, "--prompt is not UTF-8 text: invalid UTF-8 at byte offset 0"},
             {small + " --prompt Q" + out, "--prompt: encode: character 'Q'"},
             {small + " --n-embd 24 --n-head 5" + out, "--n-embd 24 must be a multiple of --n-head 5"},
             {small + " --out " + (dir / "dangling").string(), "is a symbolic link to '" + (dir / "no" / "such" / "folder").string() +
                                                                 "', which does not exist"},
             {small + " --steps 20 --resume " + step("12abc") + out, "has step = '12abc', expected a whole number of steps"},
             {small + " --steps 20 --resume " + step("-1") + out, "has step = '-1', expected a whole number of steps, 0 or more"},
             {small + " --steps 3 --resume " + checkpoint + out, "is at step 4, past --steps 3; give a --steps of at least 4"},
             {small + " --steps 20 --n-embd 32 --resume " + checkpoint + out,
              "holds a model with vocab=11 block_size=16 n_layer=1 n_head=2 n_embd=16, but these flags and the corpus make one with "
              "vocab=11 block_size=16 n_layer=1 n_head=2 n_embd=32: n_embd (16 there, 32 here) differ"},
             {small + " --steps 20 --corpus " + (dir / "other.txt").string() + " --resume " + checkpoint + out,
              "was trained on other characters: its vocabulary (11 characters) and this corpus's (11) differ first at id 3 ('c' there, "
              "'e' here)"},
             {small + " --steps 20 --resume " + nan + out, "holds NaN or Inf in '"},
             {small + " --steps 20 --resume " + bare + out, "is not a training checkpoint: it holds"},
         }) {
        INFO(c.args);
        Run r = train_gpt(c.args);
        INFO(r.output);
        CHECK(r.status != 0);
        CHECK_THAT(r.output, Contains(c.message));
        CHECK_THAT(r.output, !Contains("validation loss before training"));   // refused before any work
    }
    CHECK(read(checkpoint) == before);
}

TEST_CASE("train_gpt with --block-size below 32 draws its report on a validation string of --block-size characters")
{
    fs::path dir = scratch("gpt_short_block");
    std::string words;
    for (int i = 0; i < 400; ++i) words += "the cat sat on the mat\n";
    std::ofstream(dir / "corpus.txt") << words;
    const Run r = train_gpt("--n-layer 1 --n-embd 16 --n-head 2 --eval-iters 1 --eval-interval 2 --max-new-tokens 5 --batch 2 "
                            "--steps 2 --block-size 8 --corpus " + (dir / "corpus.txt").string() + " --out " + (dir / "out").string());
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(fs::exists(dir / "out" / "report.html"));
}

TEST_CASE("SIGKILL at any moment, even during a save, loses at most the steps since the last checkpoint", "[kill]")
{
    const std::string args = quick + " --steps 1500 --eval-interval 10";
    fs::path straight = scratch("uninterrupted");
    REQUIRE(train_lm(args + " --out " + straight.string()).status == 0);

    // every = 1: saves take most of each step, so most kills land inside one
    for (int every : {1, 25}) {
        fs::path crashed = scratch("crashed_every_" + std::to_string(every));
        const std::string run_args = args + " --checkpoint-every " + std::to_string(every) + " --out " + crashed.string();
        const std::string checkpoint = (crashed / "checkpoint.safetensors").string();
        int kills = 0;
        for (int delay_ms : {400, 500, 600, 700}) {        // each run resumes from where the last one died
            const std::string command = "exec " + std::string(XGRAD_TRAIN_LM) + run_args +
                                        (fs::exists(checkpoint) ? " --resume " + checkpoint : "") + " > " +
                                        (crashed / "log.txt").string() + " 2>&1";
            const pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
                ::_exit(127);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            ::kill(pid, SIGKILL);
            int status = 0;
            ::waitpid(pid, &status, 0);
            if (!WIFSIGNALED(status)) continue;            // it finished before the kill
            ++kills;

            const std::string log = read(crashed / "log.txt");   // the last "step N" line it printed
            const std::regex step_line("step +([0-9]+) ");
            long reported = 0;
            for (auto it = std::sregex_iterator(log.begin(), log.end(), step_line); it != std::sregex_iterator(); ++it) {
                reported = std::stol((*it)[1]);
            }
            if (!fs::exists(checkpoint)) {
                CHECK(reported <= every);                  // killed before its first checkpoint
                continue;
            }
            xgrad::io::Safetensors file = xgrad::io::load_safetensors(checkpoint);   // never torn
            const long saved = std::stol(file.metadata.at("step"));
            INFO("every " << every << ", killed after " << delay_ms << " ms: reported step " << reported
                          << ", checkpoint at step " << saved);
            // lost: at most the steps since the last finished checkpoint (a save in progress is not one)
            CHECK(saved >= reported - every);
        }
        CHECK(kills >= 2);
        Run finish = train_lm(run_args + (fs::exists(checkpoint) ? " --resume " + checkpoint : ""));
        INFO(finish.output);
        REQUIRE(finish.status == 0);
        CHECK(read(straight / "losses.csv") == read(crashed / "losses.csv"));   // as if it had never stopped
    }
}

TEST_CASE("a FIFO as --corpus or --resume is refused at once, not waited on forever")
{
    fs::path dir = scratch("fifo");
    REQUIRE(::mkfifo((dir / "corpus").c_str(), 0600) == 0);
    REQUIRE(::mkfifo((dir / "checkpoint").c_str(), 0600) == 0);
    for (const std::string& args : {"--corpus " + (dir / "corpus").string(), "--resume " + (dir / "checkpoint").string()}) {
        INFO(args);
        const pid_t pid = spawn(tiny + " " + args + " --out " + (dir / "out").string(), dir / "log.txt");
        CHECK(wait_at_most(pid, std::chrono::seconds(20)) == 1);
        CHECK_THAT(read(dir / "log.txt"), Contains("is not a regular file"));
    }
}

TEST_CASE("an output folder that cannot take files is refused before training, even where access() says yes")
{
    // /proc/self takes no new files, and for root access(W_OK) says it is writable; nothing is changed there
    Run r = train_lm(tiny + " --out /proc/self");
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("the output folder '/proc/self' is not writable: cannot create a file in it"));
    CHECK(r.output.find("training:") == std::string::npos);
}

namespace {

void limit_file_size()   // in the child: writes past 256 KiB fail with EFBIG, as on a full disk
{
    ::signal(SIGXFSZ, SIG_IGN);   // an ignored signal stays ignored across exec
    rlimit limit{256 * 1024, 256 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &limit);
}

}  // namespace

TEST_CASE("a full disk at the end leaves the previous checkpoint and report whole, and says why")
{
    fs::path out = scratch("full_disk");
    REQUIRE(train_lm(tiny + " --out " + out.string()).status == 0);
    std::map<std::string, std::string> before;
    for (const auto& name : listing(out)) before[name] = read(out / name);
    REQUIRE(fs::file_size(out / "checkpoint.safetensors") < 256 * 1024);   // this fits under the limit,
    REQUIRE(fs::file_size(out / "report.html") > 256 * 1024);              // this does not
    const pid_t pid = spawn(tiny + " --steps 20 --seed 3 --out " + out.string(), out / "../full_disk.log", limit_file_size);
    CHECK(wait_at_most(pid, std::chrono::seconds(60)) == 1);
    const std::string log = read(out / "../full_disk.log");
    INFO(log);
    CHECK_THAT(log, Contains("cannot write '" + (out / "report.html").string() + "': File too large"));
    CHECK(listing(out) == std::vector<std::string>{".xgrad-program", ".xgrad.lock", "checkpoint.safetensors", "graph.svg",
                                                   "losses.csv", "metadata.tsv", "report.html", "vectors.tsv"});   // no temporary left
    before.erase(".xgrad.lock");                                                 // (it holds the process id)
    for (const auto& [name, content] : before) CHECK(read(out / name) == content);   // all of the first run's
}

TEST_CASE("a second run on the same --out is refused, naming the program and process that hold it")
{
    fs::path out = scratch("locked");
    const int fd = ::open((out / ".xgrad.lock").c_str(), O_RDWR | O_CREAT, 0666);   // as a live train_gpt run holds it
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
    const std::string holder = std::to_string(::getpid()) + " train_gpt\n";
    REQUIRE(::write(fd, holder.data(), holder.size()) == static_cast<ssize_t>(holder.size()));
    Run r = train_lm(tiny + " --out " + out.string());
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("the output folder '" + out.string() + "' is in use by another run (train_gpt, process " +
                                  std::to_string(::getpid())));
    CHECK(!fs::exists(out / "checkpoint.safetensors"));
    ::close(fd);
    CHECK(train_lm(tiny + " --out " + out.string()).status == 0);   // the lock goes with its process
}

TEST_CASE("a folder one program wrote is refused to the other, before any work, and its files stay as they were")
{
    fs::path out = scratch("owned");
    REQUIRE(train_lm(tiny + " --out " + out.string()).status == 0);
    std::map<std::string, std::string> before;
    for (const auto& name : listing(out)) before[name] = read(out / name);
    const Run r = train_gpt("--steps 2 --n-layer 1 --eval-iters 1 --out " + out.string());
    const std::string& output = r.output;
    INFO(output);
    CHECK(r.status != 0);
    CHECK_THAT(output, Contains("the output folder '" + out.string() + "' holds a train_lm run") && Contains("another --out"));
    CHECK_THAT(output, !Contains("step "));   // refused before training
    before.erase(".xgrad.lock");
    for (const auto& [name, content] : before) CHECK(read(out / name) == content);
    CHECK(train_lm(tiny + " --out " + out.string()).status == 0);   // its own program may run there again
}

TEST_CASE("SIGINT ends the run after its step with a checkpoint, losses and report of that step, and exit 130")
{
    fs::path out = scratch("interrupted");
    const pid_t pid = spawn(quick + " --steps 1000000 --eval-interval 10 --out " + out.string(), out / "../interrupted.log");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (read(out / "../interrupted.log").find("step     20 ") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGINT);
    CHECK(wait_at_most(pid, std::chrono::seconds(30)) == 130);
    const std::string log = read(out / "../interrupted.log");
    INFO(log);
    std::smatch m;
    REQUIRE(std::regex_search(log, m, std::regex("stopped by SIGINT after step ([0-9]+) of 1000000: wrote checkpoint")));
    const long step = std::stol(m[1]);
    CHECK(step >= 20);
    const xgrad::io::Safetensors file = xgrad::io::load_safetensors((out / "checkpoint.safetensors").string());
    CHECK(std::stol(file.metadata.at("step")) == step);                 // the checkpoint, the losses and the
    const std::string losses = read(out / "losses.csv");                // report all describe that step
    CHECK(std::count(losses.begin(), losses.end(), '\n') == step + 1);
    CHECK(losses.find("\n" + std::to_string(step - 1) + ",") != std::string::npos);
    CHECK(fs::exists(out / "report.html"));
}

TEST_CASE("a run whose loss becomes NaN stops naming the step, exits non-zero, and keeps the last good checkpoint")
{
    fs::path out = scratch("diverged");
    Run r = train_lm(tiny + " --steps 50 --lr 1e30 --checkpoint-every 1 --out " + out.string());
    INFO(r.output);
    CHECK(r.status == 1);
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m, std::regex("training diverged: the (training loss is [-a-z]+ at step|weights hold "
                                                      "NaN or Inf after step) ([0-9]+)")));
    const long step = std::stol(m[2]);
    REQUIRE(fs::exists(out / "checkpoint.safetensors"));
    const xgrad::io::Safetensors file = xgrad::io::load_safetensors((out / "checkpoint.safetensors").string());
    CHECK(std::stol(file.metadata.at("step")) < step);
    CHECK_THAT(r.output, Contains("the last good checkpoint, of step " + file.metadata.at("step")));
    for (const auto& [name, values] : file.tensors) {
        const xgrad::Values v = values.values();
        for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(std::isfinite(v[i]));
    }
    CHECK(!fs::exists(out / "report.html"));
}

TEST_CASE("on --resume the flags left out are the checkpoint's, a changed --lr is applied and said")
{
    fs::path out = scratch("resume_flags");
    REQUIRE(train_lm(tiny + " --seed 5 --lr 0.002 --out " + out.string()).status == 0);
    const std::string checkpoint = (out / "checkpoint.safetensors").string();
    Run same = train_lm(tiny + " --steps 15 --resume " + checkpoint + " --out " + out.string());   // no --seed, no --lr
    INFO(same.output);
    REQUIRE(same.status == 0);
    CHECK_THAT(same.output, Contains("from the checkpoint: --seed 5 --init-std 0.02 --lr 0.002") && Contains("Adam lr 0.002"));
    CHECK(xgrad::io::load_safetensors(checkpoint).metadata.at("seed") == "5");   // the split stayed the checkpoint's
    Run changed = train_lm(tiny + " --steps 20 --lr 0.01 --resume " + checkpoint + " --out " + out.string());
    INFO(changed.output);
    REQUIRE(changed.status == 0);
    CHECK_THAT(changed.output, Contains("changed from here on: --lr 0.01 (was 0.002") && Contains("Adam lr 0.01"));
    const auto metadata = xgrad::io::load_safetensors(checkpoint).metadata;
    CHECK(metadata.at("optimizer.group.0.lr") == "0.01");                    // what training used
    CHECK(metadata.at("optimizer.group.1.lr") == "0.01");
}

TEST_CASE("CRLF line ends are line breaks, and tabs and other control characters are escaped in metadata.tsv")
{
    fs::path dir = scratch("crlf");
    std::ofstream corpus(dir / "crlf.txt", std::ios::binary);
    for (int i = 0; i < 300; ++i) corpus << "word\t" << i << "\r\n" << "\x1b" << "esc\r\n";
    corpus.close();
    Run r = train_lm(tiny + " --block-size 8 --corpus " + (dir / "crlf.txt").string() + " --out " + dir.string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    std::istringstream metadata(read(dir / "metadata.tsv"));
    std::vector<std::string> labels;
    for (std::string line; std::getline(metadata, line);) {
        CHECK(std::count(line.begin(), line.end(), '\t') == 1);   // two columns, always
        labels.push_back(line.substr(0, line.find('\t')));
    }
    CHECK(std::find(labels.begin(), labels.end(), "\\t") != labels.end());
    CHECK(std::find(labels.begin(), labels.end(), "\\u001B") != labels.end());
    CHECK(std::find(labels.begin(), labels.end(), "\\r") == labels.end());   // CRLF is one line break, not a token
}

TEST_CASE("a text without line breaks gets no newline token, so its windows start anywhere")
{
    fs::path dir = scratch("no_newline");
    std::string text;
    for (int i = 0; i < 400; ++i) text += "the cat sat on the mat ";
    std::ofstream(dir / "one_line.txt") << text;
    Run r = train_lm(tiny + " --corpus " + (dir / "one_line.txt").string() + " --out " + dir.string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("8280 train / 920 validation characters, vocabulary of 10"));   // t h e c a s o n m ␠
    CHECK(read(dir / "metadata.tsv").find("\\n\t") == std::string::npos);
}

TEST_CASE("degenerate corpora train and report: one letter repeated, one class of letters, no letters at all")
{
    // A vocabulary of one token has no nearest neighbour; one of vowels only has no other class; one of
    // digits has no class the structure score counts. Each run ends with its report written.
    const std::vector<std::pair<std::string, std::string>> corpora = {
        {"one_letter", std::string(10000, 'a')},
        {"vowels", [] { std::string t; for (int i = 0; i < 2000; ++i) t += "aeiou"; return t; }()},
        {"digits", [] { std::string t; for (int i = 0; i < 1000; ++i) t += "0123456789\n"; return t; }()},
    };
    for (const auto& [name, text] : corpora) {
        fs::path dir = scratch("degenerate_" + name);
        std::ofstream(dir / "corpus.txt") << text;
        Run r = train_lm(tiny + " --corpus " + (dir / "corpus.txt").string() + " --out " + (dir / "out").string());
        INFO(name << ": " << r.output);
        REQUIRE(r.status == 0);
        CHECK(fs::exists(dir / "out" / "report.html"));
        if (name != "vowels") CHECK_THAT(r.output, Contains("structure: not measured"));
    }
}

TEST_CASE("a vocabulary of a hundred thousand characters trains and is measured, without a vocabulary-by-vocabulary matrix")
{
    // Such a matrix is 40 GB: the structure score and the neighbours take one row of cosines at a time.
    fs::path dir = scratch("huge_vocabulary");
    std::string text = "the quick brown fox jumps over the lazy dog THE QUICK BROWN FOX\n";
    std::size_t distinct = 0;
    for (char32_t c = 0x100; distinct < 100000; ++c) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;   // surrogates are no characters
        text += xgrad::text::encode_utf8(c) + xgrad::text::encode_utf8(c) + (++distinct % 40 == 0 ? "\n" : "");
    }
    std::ofstream(dir / "corpus.txt") << text;
    Run r = train_lm(" --steps 2 --eval-interval 2 --eval-batches 1 --batch 2 --block-size 8 --n-embd 8 --sample-length 5 --corpus " +
                     (dir / "corpus.txt").string() + " --out " + (dir / "out").string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("vocabulary of 100043"));   // 26 small letters, 15 capitals, the space, the line break
    CHECK_THAT(r.output, Contains("have a nearest neighbour of their own class"));
    CHECK(fs::exists(dir / "out" / "report.html"));
}

TEST_CASE("threads past the cores are capped at them, the cap said, and under a memory limit the run ends")
{
    // OpenBLAS reserves 128 MiB per thread and retried forever when a 2 GB limit refused it: 16
    // threads hung, 1024 printed an out-of-memory message naming the wrong flags, then hung.
    fs::path out = scratch("threads_cap");
    const int cores = xgrad::available_cores();
    Run r = train_lm(tiny + " --threads 1024 --out " + out.string());
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains("--threads 1024 is more than the " + std::to_string(cores) + " cores this process may use: "
                                  "running on " + std::to_string(cores) + " threads"));
#if !defined(__SANITIZE_ADDRESS__)   // whose shadow memory a 2 GB address-space limit does not hold
    Run limited = train_lm(tiny + " --threads 64 --out " + out.string(), "ulimit -v 2000000; timeout 120");
    INFO(limited.output);
    CHECK(limited.status == 0);
    CHECK_THAT(limited.output, Contains("wrote "));
#endif
}

TEST_CASE("with --threads 1 a bad XGRAD_NUM_THREADS is no error: the variable is only the fallback")
{
    fs::path out = scratch("threads_env");
    Run given = train_lm(tiny + " --threads 1 --out " + out.string(), "XGRAD_NUM_THREADS=abc");
    INFO(given.output);
    CHECK(given.status == 0);
    Run fallback = train_lm(tiny + " --out " + out.string(), "XGRAD_NUM_THREADS=abc");
    CHECK(fallback.status == 1);
    CHECK_THAT(fallback.output, Contains("XGRAD_NUM_THREADS must be a whole number from 1 to 1024, got 'abc'"));
}

TEST_CASE("train_lm --diagnostics-every writes the diagnostics and the first step's graph into the report, and --sparse keeps "
          "untouched embedding rows still")
{
    std::map<bool, std::string> embeddings_csv;
    for (bool sparse : {false, true}) {
        fs::path out = scratch(sparse ? "diagnostics_sparse" : "diagnostics_dense");
        // the sparse run draws the dense one's embedding figures beside its own
        const std::string compare = sparse ? " --sparse --compare-diagnostics " + scratch_path("diagnostics_dense").string() : "";
        Run run = train_lm(tiny + " --hidden 16 --diagnostics-every 5" + compare + " --out " + out.string());
        INFO(run.output);
        REQUIRE(run.status == 0);
        const std::string params = read(out / "diagnostics_params.csv");
        CHECK_THAT(params, Contains("step,parameter,grad_norm,update_to_data_log10\n0,tok_emb.weight,") &&
                               Contains("\n5,lm_head.bias,") && !Contains("\n1,"));   // steps 0 and 5 only
        CHECK_THAT(read(out / "diagnostics_layers.csv"), Contains("\n5,act,GELU(approximate='tanh'),"));
        const std::string html = read(out / "report.html");
        CHECK_THAT(html, Contains("The autograd graph of the first step") && Contains("tok_emb.weight") &&
                             Contains("Update-to-data ratio") && Contains("Layer outputs") && Contains("Embedding rows"));
        CHECK(html.find("<?xml") == std::string::npos);   // Graphviz's SVG inline, without its prolog
        CHECK_THAT(read(out / "graph.svg"), Contains("<svg") && Contains("embedding_lookup") && Contains("cross_entropy"));
        embeddings_csv[sparse] = read(out / "diagnostics_embeddings.csv");
        if (sparse) {
            CHECK_THAT(html, Contains("--sparse (this run): tok_emb.weight untouched rows") &&
                                 Contains("dense (" + scratch_path("diagnostics_dense").string() + "): tok_emb.weight untouched rows"));
        }
    }
    // step 5's token table: the untouched rows' drift, the last column
    auto untouched_drift = [](const std::string& csv) {
        std::smatch m;
        REQUIRE(std::regex_search(csv, m, std::regex("\n5,tok_emb.weight,[^,]+,[^,]+,([^\n]+)")));
        return std::stod(m[1]);
    };
    CHECK(untouched_drift(embeddings_csv[false]) > 0.0);    // dense Adam: momentum moves them
    CHECK(untouched_drift(embeddings_csv[true]) == 0.0);    // sparse: they stay put
}

TEST_CASE("without --diagnostics-every no diagnostics file is written")
{
    fs::path out = scratch("no_diagnostics");
    REQUIRE(train_lm(tiny + " --out " + out.string()).status == 0);
    CHECK(!fs::exists(out / "diagnostics_params.csv"));
    CHECK(read(out / "report.html").find("Update-to-data ratio") == std::string::npos);
}
