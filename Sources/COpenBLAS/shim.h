// The CBLAS interface of OpenBLAS (Debian/Ubuntu: libopenblas-dev installs it as <cblas.h>).
#include <cblas.h>
