// Gradient clipping by total norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace xgrad::optim {

// The norm of all gradients together (dense and row-sparse), as if concatenated; if it exceeds
// max_norm, every gradient is scaled by max_norm / (total_norm + 1e-6). Returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm);

}  // namespace xgrad::optim
