#include "socketeer/interrupt.hpp"

#include <atomic>

namespace socketeer {
namespace {
std::atomic<InterruptHook> interrupt_hook{nullptr};
}

void set_interrupt_hook(InterruptHook hook) noexcept { interrupt_hook.store(hook); }

void on_interrupt() {
  if (auto hook = interrupt_hook.load()) hook();
}

}  // namespace socketeer
