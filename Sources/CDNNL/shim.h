// oneDNN's C API (Debian/Ubuntu: libdnnl-dev installs <dnnl.h>; its CPU engine threads with OpenMP).
#include <dnnl.h>

// libgomp's (linked by libdnnl): the backend runs each oneDNN product on one thread and splits the work across
// cores itself, so OpenMP's spinning workers never compete with its own.
void omp_set_num_threads(int num_threads);
