// What to do when a syscall returns EINTR. The core retries; before each retry it calls the
// installed hook, which may throw to abandon the call. The Python bindings install a hook that
// runs Python's signal handlers, so Ctrl-C interrupts a blocking recv() as it does in the
// standard library, while the core itself knows nothing of Python.
#pragma once

#include <cerrno>

namespace socketeer {

using InterruptHook = void (*)();
void set_interrupt_hook(InterruptHook hook) noexcept;
void on_interrupt();  // called after EINTR, before retrying

// Calls a syscall until it does not fail with EINTR.
template <typename Call>
auto retry_eintr(Call&& call) {
  for (;;) {
    auto ret = call();
    if (ret >= 0 || errno != EINTR) return ret;
    on_interrupt();
  }
}

}  // namespace socketeer
