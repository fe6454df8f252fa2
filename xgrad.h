// xgrad: include this to get everything.
#pragma once

#include "core/check.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
