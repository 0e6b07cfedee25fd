// posix_file_system: implemented by the storage work (see file_system.h).
#include "io/file_system.h"
