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
};

// Writes the four files into `folder` (which must exist); throws xgrad::Error if one cannot be written.
void write_report(const std::string& folder, const ReportData& data);
