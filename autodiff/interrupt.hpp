// Cooperative interruption of long calls.
//
// A program that wants Ctrl-C (or a timeout, or another thread) to stop a long sampling or
// training call calls request_interrupt() — one atomic store, safe inside a signal handler. Every
// loop of the library that can run long polls the flag once per iteration (each sampler's
// iterations, warm-up included; ReplayBuffer-driven training loops poll through their samplers)
// and throws Interrupted when it is set (NUTS and HMC also at every leapfrog step: one of their
// iterations can take a thousand evaluations). Polling is one relaxed atomic load: it changes no
// result and costs nothing measurable.
//
// What an interruption leaves: a sampler's chains hold the last completed iteration's states
// (a caller that passed a copy still has its own); a trainer's step interrupted inside its dream
// phase throws before it changes the parameters or the optimizer (as the divergence guard does),
// with its generator advanced. The flag stays set until clear_interrupt(): a caller clears it
// before a call it wants to be interruptible.
#pragma once

#include <atomic>
#include <stdexcept>

namespace ebl {

/// Thrown by a polling loop when an interruption was requested.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

namespace interrupt_detail {
inline std::atomic<bool> requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "request_interrupt must be signal-safe");
}  // namespace interrupt_detail

/// Ask every polling loop to stop (async-signal-safe).
inline void request_interrupt() noexcept {
  interrupt_detail::requested.store(true, std::memory_order_relaxed);
}
inline void clear_interrupt() noexcept {
  interrupt_detail::requested.store(false, std::memory_order_relaxed);
}
inline bool interrupt_requested() noexcept {
  return interrupt_detail::requested.load(std::memory_order_relaxed);
}
/// Throws Interrupted if an interruption was requested: the loops' once-per-iteration check.
inline void poll_interrupt() {
  if (interrupt_requested()) throw Interrupted();
}

}  // namespace ebl
