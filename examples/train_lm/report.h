// What the training example writes to its output folder: vectors.tsv and metadata.tsv (for the
// TensorBoard Embedding Projector), losses.csv, and a self-contained report.html.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "analysis.h"

struct ReportData {
    std::string title;                       // the run's settings, one line
    std::vector<std::string> labels;         // per token: its character, printable
    std::vector<std::string> classes;        // per token: analysis::char_class
    xgrad::Array tok_before, tok_after;      // (V, C) token embeddings
    xgrad::Array pos_cos_before, pos_cos_after;   // (block_size, block_size) cosine similarities
    std::vector<std::pair<std::int64_t, double>> train_loss, val_loss;   // (step, loss)
    double unigram_entropy = 0.0;
    analysis::Structure structure_before, structure_after;
    std::string graph_svg;                   // the first step's autograd graph (Graphviz's SVG); may be empty
    std::string diagnostics_html;            // inspect::Diagnostics::html(), with --diagnostics-every
};

// The files, as (name, content): vectors.tsv, metadata.tsv, losses.csv, report.html, and graph.svg when
// there is one. train_lm
// writes them together with the checkpoint, all or none (io::AtomicFile). The labels must hold no
// tab or line break (train_lm escapes every control character), or the TSV columns would break.
std::vector<std::pair<std::string, std::string>> report_files(const ReportData& data);
