// Uses the installed xgrad: one matmul (through OpenBLAS) and its gradient.
#include <iostream>

#include <xgrad.h>

int main()
{
    using namespace xgrad;
    Tensor w = tensor({{1, 2}, {3, 4}}).requires_grad_();
    Tensor y = sum(matmul(tensor({{1, 1}}), w));
    y.backward();
    bool ok = y.item() == 10.0f && w.grad().to_array()(0, 0) == 1.0f;
    std::cout << (ok ? "consumer: ok" : "consumer: wrong result") << "\n";
    return ok ? 0 : 1;
}
