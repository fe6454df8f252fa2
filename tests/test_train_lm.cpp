// The training example, run as a user runs it: short runs, resume, determinism, outputs, bad input.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cstdio>
#include <filesystem>
#include <fstream>
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

Run train_lm(const std::string& args)
{
    const std::string command = std::string(XGRAD_TRAIN_LM) + " " + args + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
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
    fs::path trained = scratch("trained");
    REQUIRE(train_lm(quick + " --steps 10 --out " + trained.string()).status == 0);
    const std::string checkpoint = (trained / "checkpoint.safetensors").string();
    const std::string before = read(checkpoint);
    auto edited = [&](const std::string& key, const std::string& value) {   // the checkpoint, one metadata value changed
        xgrad::io::Safetensors file = xgrad::io::load_safetensors(checkpoint);
        file.metadata[key] = value;
        std::vector<std::pair<std::string, const xgrad::Array*>> tensors;
        for (const auto& [name, values] : file.tensors) tensors.emplace_back(name, &values);
        const std::string path = (dir / (key + ".safetensors")).string();
        xgrad::io::save_safetensors(path, tensors, file.metadata);
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
         }) {
        INFO(c.args);
        Run r = train_lm(c.args);
        CHECK(r.status != 0);
        CHECK_THAT(r.output, Contains(c.message));
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') <= 2);   // the message, and maybe a blank line
    }
    CHECK(read(checkpoint) == before);
}

TEST_CASE("SIGKILL at any moment, even during a save, loses at most the steps since the last checkpoint")
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
