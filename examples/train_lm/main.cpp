// train_lm: train the seed's model (token + position embeddings -> next-token head) on real text,
// and show what its embeddings learn. `train_lm --help` lists the flags.
//
//   text file -> shuffled lines -> characters -> ids -> random (B, T) windows, targets shifted by one
//   -> TinyLM -> cross_entropy -> Adam -> every N steps: validation loss
//   -> neighbours, structure score and position similarity, before vs after
//   -> out/: checkpoint.safetensors, vectors.tsv, metadata.tsv, losses.csv, report.html
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "analysis.h"
#include "model.h"
#include "report.h"
#include "settings.h"
#include "xgrad.h"

using namespace xgrad;

namespace {

std::string printable(char32_t c)
{
    if (c == '\n') return "\\n";
    if (c == ' ') return "␠";
    return text::encode_utf8(c);
}

// The vocabulary as one UTF-8 string: a resumed run must see the same one.
std::string corpus_vocabulary(const text::CharTokenizer& tokenizer)
{
    std::string out;
    for (char32_t c : tokenizer.vocabulary()) out += text::encode_utf8(c);
    return out;
}

// The batch of step `step`: drawn from its own generator, so a resumed run draws the same batches.
text::Batch batch_for_step(const std::vector<std::int64_t>& tokens, const std::vector<std::size_t>& starts,
                           const Settings& s, std::int64_t step)
{
    Generator rng(s.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(step));
    return text::sample_batch(tokens, s.batch, s.block_size, rng, starts);
}

double evaluate(const TinyLM& model, const std::vector<text::Batch>& batches)
{
    NoGradGuard no_grad;
    double total = 0.0;
    for (const auto& b : batches) total += nn::functional::cross_entropy(model.forward(b.x), b.y).item();
    return total / double(batches.size());
}

double unigram_entropy(const std::vector<std::int64_t>& tokens, std::size_t vocab_size)
{
    std::vector<double> count(vocab_size, 0.0);
    for (auto t : tokens) count[static_cast<std::size_t>(t)] += 1.0;
    double h = 0.0;
    for (double c : count) {
        if (c > 0) h -= c / double(tokens.size()) * std::log(c / double(tokens.size()));
    }
    return h;
}

std::string sample(const TinyLM& model, const text::CharTokenizer& tokenizer, const Settings& s)
{
    NoGradGuard no_grad;
    Generator rng(s.seed + 2);
    const auto& vocab = tokenizer.vocabulary();
    const auto newline = std::lower_bound(vocab.begin(), vocab.end(), U'\n');
    std::vector<std::int64_t> ids = {newline != vocab.end() && *newline == U'\n' ? newline - vocab.begin() : 0};
    for (std::size_t i = 0; i < s.sample_length; ++i) {
        const std::size_t start = ids.size() > s.block_size ? ids.size() - s.block_size : 0;
        std::vector<std::int64_t> context(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.end());
        Tensor logits = model.forward(text::to_ids(context, true));                      // (1, T, V)
        const std::size_t V = tokenizer.vocab_size(), last = context.size() - 1;
        std::vector<double> p(V);
        double top = -1e30, total = 0.0;
        for (std::size_t v = 0; v < V; ++v) top = std::max(top, double(logits.data()(0, last, v)) / s.temperature);
        for (std::size_t v = 0; v < V; ++v) total += p[v] = std::exp(double(logits.data()(0, last, v)) / s.temperature - top);
        double r = rng.uniform() * total;
        std::size_t next = 0;
        while (next + 1 < V && (r -= p[next]) > 0) ++next;
        ids.push_back(static_cast<std::int64_t>(next));
    }
    return tokenizer.decode(ids);
}

struct Snapshot {
    Array tok, pos_cos;                  // token vectors; cosines of the centred position vectors
    analysis::Structure structure;
    std::vector<double> by_distance, by_distance_early;
};

const std::vector<std::size_t> distances = {1, 2, 4, 8, 16, 32};

Snapshot look_at(const TinyLM& model, const text::CharTokenizer& tokenizer, const char* when)
{
    Snapshot snap{model.tok_emb->weight.data(), analysis::cosine_matrix(analysis::centered(model.pos_emb->weight.data())),
                  {}, {}, {}};
    const Array cos = analysis::cosine_matrix(snap.tok);
    snap.structure = analysis::structure_score(cos, tokenizer.vocabulary());
    snap.by_distance = analysis::similarity_by_distance(snap.pos_cos, distances, snap.pos_cos.shape()[0]);
    snap.by_distance_early = analysis::similarity_by_distance(snap.pos_cos, {1, 2, 4, 8}, 16);
    std::printf("\nembeddings %s training\n  nearest neighbours by cosine:\n", when);
    for (char32_t c : std::u32string(U"aeiousntrAE'")) {
        const auto& vocab = tokenizer.vocabulary();
        auto it = std::find(vocab.begin(), vocab.end(), c);
        if (it == vocab.end()) continue;
        std::printf("    %-2s ->", printable(c).c_str());
        for (const auto& n : analysis::nearest(cos, static_cast<std::size_t>(it - vocab.begin()), 4)) {
            std::printf("  %-2s %.2f", printable(vocab[n.id]).c_str(), n.cosine);
        }
        std::printf("\n");
    }
    std::printf("  structure: %.0f%% of vowels, consonants and capitals have a nearest neighbour of their own class "
                "(chance %.0f%%)\n", 100 * snap.structure.score, 100 * snap.structure.chance);
    std::printf("  position similarity by distance (mean cosine of centred position vectors d apart):\n    all positions:");
    for (std::size_t i = 0; i < distances.size(); ++i) std::printf("  d=%zu: %+.2f", distances[i], snap.by_distance[i]);
    std::printf("\n    positions 0-15:");
    for (std::size_t i = 0; i < 4; ++i) std::printf("  d=%zu: %+.2f", distances[i], snap.by_distance_early[i]);
    std::printf("\n");
    return snap;
}

std::string history_csv(const std::vector<std::pair<std::int64_t, double>>& history)
{
    std::ostringstream out;
    char buffer[48];
    for (const auto& [step, loss] : history) {
        std::snprintf(buffer, sizeof buffer, "%lld:%.9g;", static_cast<long long>(step), loss);
        out << buffer;
    }
    return out.str();
}

// A step count from the checkpoint's metadata: the whole text, 0 or more, or an error naming the file.
std::int64_t parse_step(const std::string& text, const std::string& file, const char* key)
{
    std::int64_t step = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), step);
    XGRAD_CHECK(error == std::errc() && end == text.data() + text.size() && step >= 0, "resume: '", file, "' has ", key,
          " = '", text, "', expected a whole number of steps");
    return step;
}

// "step:loss;step:loss;...", as history_csv writes it; anything else is an error naming the file.
std::vector<std::pair<std::int64_t, double>> parse_history(const std::string& text, const std::string& file, const char* key)
{
    std::vector<std::pair<std::int64_t, double>> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ';');) {
        const auto colon = item.find(':');
        const std::string loss_text = colon == std::string::npos ? "" : item.substr(colon + 1);
        char* end = nullptr;
        const double loss = std::strtod(loss_text.c_str(), &end);
        XGRAD_CHECK(colon != std::string::npos && !loss_text.empty() && *end == '\0', "resume: '", file, "' has an entry '",
              item, "' in ", key, ", expected step:loss");
        out.emplace_back(parse_step(item.substr(0, colon), file, key), loss);
    }
    return out;
}

class Progress {
public:
    Progress(std::int64_t first, std::int64_t last, std::size_t tokens_per_step)
        : first_(first), last_(last), tokens_(tokens_per_step), start_(clock::now()), terminal_(isatty(STDOUT_FILENO))
    {
    }
    void update(std::int64_t step, double loss, bool force)
    {
        const double elapsed = seconds();
        if (!terminal_ || (!force && elapsed - shown_ < 0.1)) return;
        shown_ = elapsed;
        const double done = double(step + 1 - first_) / double(std::max<std::int64_t>(1, last_ - first_));
        const int width = 24, filled = static_cast<int>(done * width);
        std::printf("\r[%s%s] step %lld/%lld  loss %.3f  %.0fk tok/s  ETA %.0fs   ", std::string(filled, '#').c_str(),
                    std::string(width - filled, '.').c_str(), static_cast<long long>(step + 1), static_cast<long long>(last_),
                    loss, tokens_per_second(step) / 1e3, elapsed / std::max(done, 1e-9) - elapsed);
        std::fflush(stdout);
    }
    void line(const std::string& text)   // a line that stays, above the bar
    {
        std::printf(terminal_ ? "\r%-90s\n" : "%s\n", text.c_str());
        std::fflush(stdout);
    }
    double tokens_per_second(std::int64_t step) const { return double(step + 1 - first_) * double(tokens_) / seconds(); }
    double seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

private:
    using clock = std::chrono::steady_clock;
    std::int64_t first_, last_;
    std::size_t tokens_;
    clock::time_point start_;
    bool terminal_;
    double shown_ = -1.0;
};

int run(const Settings& s)
{
    const auto start = std::chrono::steady_clock::now();
    if (s.threads > 0) set_num_threads(s.threads);
    manual_seed(s.seed);

    // the output folder first: fail before training, not after
    std::error_code error;
    std::filesystem::create_directories(s.out, error);
    XGRAD_CHECK(!error, "cannot create the output folder '", s.out, "': ", error.message());
    XGRAD_CHECK(access(s.out.c_str(), W_OK) == 0, "the output folder '", s.out, "' is not writable");

    // data: a shuffled word list (or any UTF-8 text), characters as tokens, a 90/10 split
    const std::string raw = text::read_text_file(s.corpus);
    const std::string corpus = text::shuffle_lines(raw, s.seed);
    text::CharTokenizer tokenizer(corpus);
    const std::vector<std::int64_t> tokens = tokenizer.encode(corpus);
    const std::size_t split = tokens.size() * 9 / 10;
    XGRAD_CHECK(split > s.block_size + 1 && tokens.size() - split > s.block_size + 1, "corpus: '", s.corpus, "' has ",
          tokens.size(), " characters, too few for block_size ", s.block_size,
          ": the train and validation splits (90% and 10%) each need more than block_size + 1");
    const std::vector<std::int64_t> train(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(split));
    const std::vector<std::int64_t> val(tokens.begin() + static_cast<std::ptrdiff_t>(split), tokens.end());
    const double entropy = unigram_entropy(train, tokenizer.vocab_size());
    // Windows start at the beginning of a line, as makemore feeds one name at a time: position t
    // then means "t characters into a word", which gives the position table something to learn.
    const auto& vocab = tokenizer.vocabulary();
    const bool has_lines = std::binary_search(vocab.begin(), vocab.end(), U'\n');
    const std::int64_t newline = has_lines ? tokenizer.encode("\n")[0] : -1;
    // (a text without line breaks is cut at any offset)
    const auto train_starts = has_lines ? text::offsets_after(train, newline, s.block_size) : std::vector<std::size_t>{};
    const auto val_starts = has_lines ? text::offsets_after(val, newline, s.block_size) : std::vector<std::size_t>{};
    std::vector<text::Batch> val_batches;
    Generator val_rng(s.seed + 1);
    for (std::int64_t i = 0; i < s.eval_batches; ++i) {
        val_batches.push_back(text::sample_batch(val, s.batch, s.block_size, val_rng, val_starts));
    }

    TinyLM model(tokenizer.vocab_size(), s.n_embd, s.block_size, s.hidden, s.init_std);
    // weight decay (when asked for) applies to the Linear weights only, not embeddings or biases
    std::vector<Tensor> decay, no_decay;
    for (const auto& [name, p] : model.named_parameters()) {
        const bool linear_weight = name.ends_with(".weight") && (name.starts_with("fc") || name.starts_with("lm_head"));
        (linear_weight ? decay : no_decay).push_back(p);
    }
    optim::AdamW adam({{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
                      optim::AdamOptions().lr(s.lr).weight_decay(s.weight_decay));
    std::unique_ptr<optim::Schedule> schedule;
    if (s.warmup > 0 || s.min_lr_ratio < 1.0) {
        schedule = std::make_unique<optim::WarmupCosine>(s.warmup, std::max<std::int64_t>(s.steps, s.warmup + 1), s.min_lr_ratio);
    }

    const std::string shape = "vocab=" + std::to_string(tokenizer.vocab_size()) + " n_embd=" + std::to_string(s.n_embd) +
                              " block_size=" + std::to_string(s.block_size) + " hidden=" + std::to_string(s.hidden);
    std::int64_t first_step = 0;
    std::vector<std::pair<std::int64_t, double>> train_history, val_history;
    if (!s.resume.empty()) {
        io::Safetensors peek = io::load_safetensors(s.resume);
        auto meta = [&](const char* key) { return peek.metadata.count(key) ? peek.metadata.at(key) : std::string("?"); };
        XGRAD_CHECK(meta("model") == shape, "resume: '", s.resume, "' holds a model with ", meta("model"), ", but these flags and ",
              "corpus make one with ", shape);
        XGRAD_CHECK(meta("vocabulary") == corpus_vocabulary(tokenizer), "resume: '", s.resume, "' was trained on another corpus ",
              "(its vocabulary differs)");
        optim::load_checkpoint(s.resume, model.named_parameters(), adam);
        first_step = parse_step(meta("step"), s.resume, "step");
        train_history = parse_history(meta("train_loss"), s.resume, "train_loss");
        val_history = parse_history(meta("val_loss"), s.resume, "val_loss");
        XGRAD_CHECK(first_step <= s.steps, "resume: the checkpoint is at step ", first_step, ", past --steps ", s.steps);
    }

    std::printf("xgrad train_lm: %s, %zu train / %zu validation characters, vocabulary of %zu\n", s.corpus.c_str(),
                train.size(), val.size(), tokenizer.vocab_size());
    std::cout << model;
    std::printf("unigram entropy of the training characters: %.3f nats (a model that knows only their frequencies)\n", entropy);
    const Snapshot before = look_at(model, tokenizer, first_step == 0 ? "before" : "at the resumed step, before more");
    std::printf("validation loss before training: %.4f\n", evaluate(model, val_batches));

    auto save = [&](std::int64_t steps_done) {
        optim::save_checkpoint(s.out + "/checkpoint.safetensors", model.named_parameters(), adam,
                               {{"step", std::to_string(steps_done)}, {"model", shape}, {"seed", std::to_string(s.seed)},
                                {"vocabulary", corpus_vocabulary(tokenizer)}, {"train_loss", history_csv(train_history)},
                                {"val_loss", history_csv(val_history)}});
    };

    std::printf("\ntraining: %lld steps of (B, T) = (%zu, %zu), Adam lr %g, %d threads\n", static_cast<long long>(s.steps),
                s.batch, s.block_size, s.lr, get_num_threads());
    Progress progress(first_step, s.steps, s.batch * s.block_size);
    double recent = 0.0, last_val = std::nan("");
    std::int64_t recent_count = 0;
    std::vector<std::pair<std::int64_t, double>> final_off_interval;
    for (std::int64_t step = first_step; step < s.steps; ++step) {
        if (schedule) schedule->apply(adam, step);
        const text::Batch batch = batch_for_step(train, train_starts, s, step);
        adam.zero_grad();
        Tensor loss = nn::functional::cross_entropy(model.forward(batch.x), batch.y);
        loss.backward();
        if (s.clip > 0) optim::clip_grad_norm(model.parameters(), s.clip);
        adam.step();

        const double value = loss.item();
        train_history.emplace_back(step, value);
        recent += value, ++recent_count;
        progress.update(step, value, false);
        const bool last = step + 1 == s.steps, on_interval = (step + 1) % s.eval_interval == 0;
        if (on_interval || last) {
            const double val_loss = evaluate(model, val_batches);
            // Only evaluations on the interval go into the history that checkpoints carry, so that a
            // run resumed from a checkpoint writes the same history as one that never stopped.
            (on_interval ? val_history : final_off_interval).emplace_back(step, val_loss);
            last_val = val_loss;
            char line[160];
            std::snprintf(line, sizeof line, "step %6lld  train %.4f  val %.4f  (unigram entropy %.3f)  %.0fk tok/s",
                          static_cast<long long>(step + 1), recent / double(recent_count), val_loss, entropy,
                          progress.tokens_per_second(step) / 1e3);
            progress.line(line);
            recent = 0.0, recent_count = 0;
        }
        if (s.checkpoint_every > 0 && (step + 1) % s.checkpoint_every == 0 && !last) save(step + 1);
    }
    save(s.steps);

    const Snapshot after = look_at(model, tokenizer, "after");
    std::printf("\nstructure score: %.0f%% before, %.0f%% after (chance %.0f%%)\n", 100 * before.structure.score,
                100 * after.structure.score, 100 * after.structure.chance);
    if (!std::isnan(last_val)) std::printf("final validation loss %.4f nats vs unigram entropy %.3f\n", last_val, entropy);
    std::printf("\nsample (temperature %.2f):\n%s\n", s.temperature, sample(model, tokenizer, s).c_str());

    ReportData report;
    char title[256];
    std::snprintf(title, sizeof title, "%s; %lld steps, batch %zu, block_size %zu, n_embd %zu, hidden %zu, lr %g, seed %llu",
                  s.corpus.c_str(), static_cast<long long>(s.steps), s.batch, s.block_size, s.n_embd, s.hidden, s.lr,
                  static_cast<unsigned long long>(s.seed));
    report.title = title;
    for (char32_t c : tokenizer.vocabulary()) {
        report.labels.push_back(printable(c));
        report.classes.push_back(analysis::char_class(c));
    }
    report.tok_before = before.tok, report.tok_after = after.tok;
    report.pos_cos_before = before.pos_cos, report.pos_cos_after = after.pos_cos;
    report.train_loss = train_history, report.val_loss = val_history;
    report.val_loss.insert(report.val_loss.end(), final_off_interval.begin(), final_off_interval.end());
    report.unigram_entropy = entropy;
    report.structure_before = before.structure, report.structure_after = after.structure;
    write_report(s.out, report);
    std::printf("\nwrote %s/: checkpoint.safetensors, vectors.tsv, metadata.tsv, losses.csv, report.html (%.1f s in all)\n",
                s.out.c_str(), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    Settings s;
    if (int exit_code = parse_settings(argc, argv, s); exit_code >= 0) return exit_code;   // --help, or a bad flag
    try {
        return run(s);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "\ntrain_lm: %s\n", e.what());
        return 1;
    }
}
