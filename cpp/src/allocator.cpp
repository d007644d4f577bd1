#include "socketeer/allocator.hpp"

#include <malloc.h>

#include <cstdlib>
#include <mutex>

namespace socketeer {

void tune_allocator_for_messages() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("MALLOC_MMAP_THRESHOLD_")) return;
    ::mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);  // fixed, since setting the trim threshold
    ::mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);  // ends glibc's dynamic mmap threshold
  });
}

void release_free_memory() { ::malloc_trim(0); }

}  // namespace socketeer
