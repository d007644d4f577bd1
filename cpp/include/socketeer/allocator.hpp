// The reactor's dealings with glibc's allocator: keep freed memory while messages come and go,
// give it back once the burst is over.
//
// Python handlers get a fresh bytes object per message. With glibc's defaults, freeing a 64 KiB
// one hands the heap top back to the kernel and the next message faults it in again (measured:
// 82 -> 44 us of server CPU per 64 KiB echo with the tuning below). The price of keeping freed
// memory is that a server that served a burst (say 10,000 connections with 64 KiB read buffers)
// keeps its peak footprint when the burst is over: glibc returns memory inside its heaps only
// when asked (malloc_trim), and never trims a thread's heap while less than the trim threshold
// sits free at its top. So the reactor asks, once, when its loop goes quiet after freeing a lot.
#pragma once

namespace socketeer {

// Keeps up to 64 MiB of freed heap for reuse and serves blocks up to 16 MiB from the heap.
// Once per process; skipped when MALLOC_TRIM_THRESHOLD_ or MALLOC_MMAP_THRESHOLD_ is set.
void tune_allocator_for_messages();

// Returns the whole pages of every arena's free memory to the kernel (malloc_trim(0)): the
// process's resident size falls back towards what is in use. Costs a walk over the free lists
// and an madvise per free run of pages, so it is for idle moments, not for a loop turn.
void release_free_memory();

}  // namespace socketeer
