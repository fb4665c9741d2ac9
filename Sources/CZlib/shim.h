// zlib's inflate and crc32 (Debian/Ubuntu: zlib1g-dev installs <zlib.h>).
#include <zlib.h>
