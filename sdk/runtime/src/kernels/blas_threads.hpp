// Internal: OpenBLAS runs single-threaded inside the runtime; the runtime's pool supplies
// the parallelism (see linear.cpp).
#pragma once

namespace nemokit::rt::kernels {
void ensure_single_threaded_blas();
}
