// A first look at xgrad: tensors, broadcasting, autograd, and the gradient of a tiny model.
#include <iostream>

#include "xgrad.h"

using namespace xgrad;

int main()
{
    manual_seed(0);

    // x * x: the gradient of sum(x^2) is 2x
    Tensor x = tensor({1.0f, 2.0f, 3.0f}).requires_grad_();
    Tensor y = sum(x * x);
    y.backward();
    std::cout << "x            = " << x << "\n";
    std::cout << "sum(x * x)   = " << y.item() << "\n";
    std::cout << "d/dx         = " << x.grad() << "   (2x)\n\n";

    // a tiny linear layer with a broadcast bias, trained for a few steps by hand
    Tensor inputs = randn({8, 3});
    Tensor targets = matmul(inputs, tensor({{1.0f}, {-2.0f}, {0.5f}}));   // (8, 1)
    Tensor w = zeros({3, 1}, true), b = zeros({1}, true);
    for (int step = 0; step <= 100; ++step) {
        Tensor loss = mean(pow(matmul(inputs, w) + b - targets, 2.0f));
        w.zero_grad();
        b.zero_grad();
        loss.backward();
        {
            NoGradGuard no_grad;   // the update itself is not part of the model
            w.sub_(w.grad(), 0.1f);
            b.sub_(b.grad(), 0.1f);
        }
        if (step % 25 == 0) std::cout << "step " << step << "  loss " << loss.item() << "\n";
    }
    std::cout << "learned w = " << w << "\n(true w is [1, -2, 0.5])\n";
}
