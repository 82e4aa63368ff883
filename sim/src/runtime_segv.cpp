// The simulator runtime's SIGSEGV handler, which names device-memory faults, and the leak check
// at exit (runtime_internal.h).
#include "runtime_internal.h"

namespace mlpx_sim::runtime_detail {

// ---- The SIGSEGV handler -----------------------------------------------------------------------

struct sigaction g_previous_segv;
std::atomic<bool> g_handler_installed{false};

// Async-signal-safe formatting into a fixed buffer.
struct Text {
  char buf[1024];
  size_t n = 0;
  void put(const char* s) {
    while (*s != '\0' && n + 1 < sizeof buf) buf[n++] = *s++;
  }
  void put_dec(uint64_t v) {
    char tmp[24];
    int i = 0;
    do {
      tmp[i++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (i > 0 && n + 1 < sizeof buf) buf[n++] = tmp[--i];
  }
  void put_hex(uint64_t v) {
    put("0x");
    char tmp[20];
    int i = 0;
    do {
      tmp[i++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    while (i > 0 && n + 1 < sizeof buf) buf[n++] = tmp[--i];
  }
  void flush() {
    buf[n++] = '\n';
    size_t off = 0;
    while (off < n) {
      const ssize_t w = write(STDERR_FILENO, buf + off, n - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
  }
};

void chain_segv(int sig, siginfo_t* info, void* context) {
  const struct sigaction& prev = g_previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    // Back to the default action; returning re-runs the faulting access, which then kills us.
    signal(sig, SIG_DFL);
    return;
  }
  prev.sa_handler(sig);
}

void on_segv(int sig, siginfo_t* info, void* context) {
  const auto a = reinterpret_cast<uintptr_t>(info->si_addr);
  Slot* slots = g_slots.load();
  const size_t count = g_high_water.load(std::memory_order_acquire);
  const Slot* hit = nullptr;
  int st = kSlotFree;
  for (size_t i = 0; slots != nullptr && i < count; ++i) {
    st = slots[i].state.load(std::memory_order_acquire);
    if (st == kSlotFree) continue;
    if (a >= slots[i].map_start.load() && a < slots[i].map_end.load()) {
      hit = &slots[i];
      break;
    }
  }
  if (hit == nullptr) {
    chain_segv(sig, info, context);
    return;
  }
  const uint64_t data = hit->data.load(), size = hit->size.load();
  const char* running = g_running.load();
  Text t;
  t.put("mlpx sim: ");
  if (st == kSlotFreed) {
    t.put(running != nullptr ? "use of freed device memory at "
                             : "host code touched freed device memory at ");
    t.put_hex(a);
    t.put(" (freed allocation of ");
  } else if (running != nullptr) {
    t.put("out-of-bounds device access at ");
    t.put_hex(a);
    t.put(" (");
  } else {
    t.put("host code touched device memory at ");
    t.put_hex(a);
    t.put(" (");
  }
  if (st != kSlotFreed) {
    if (a >= data + size) {
      t.put_dec(a - (data + size));
      t.put(" bytes past an allocation of ");
    } else if (a < data) {
      t.put_dec(data - a);
      t.put(" bytes before an allocation of ");
    } else {
      t.put("allocation of ");
    }
  }
  t.put_dec(size);
  t.put(" bytes at ");
  t.put_hex(data);
  t.put(")");
  if (running != nullptr) {
    t.put(" in ");
    t.put(running);
  }
  t.flush();
  signal(SIGABRT, SIG_DFL);
  abort();
}

// The leak check (MLPX_SIM_LEAK_CHECK=1, as compute-sanitizer --leak-check full): at exit,
// device allocations still live are listed on stderr and the exit status becomes 1. Registered
// with atexit at the first allocation, so it runs after the handlers registered later, as a
// library's release of its own context.
void leak_check_at_exit() {
  Lock lock(api_mutex());
  size_t count = 0, bytes = 0;
  std::string listed;
  for_each_live([&](Slot& s) {
    ++count;
    bytes += s.size.load();
    if (count <= 5) {
      listed += (count == 1 ? "" : ", ") + std::to_string(s.size.load()) + " bytes at " +
                hex(reinterpret_cast<const void*>(s.data.load()));
    }
  });
  if (count == 0) return;
  std::fprintf(stderr,
               "mlpx sim: leak check: %zu device allocation%s (%zu bytes) never freed: %s%s\n",
               count, count == 1 ? "" : "s", bytes, listed.c_str(), count > 5 ? ", ..." : "");
  std::fflush(stderr);
  std::_Exit(1);
}

void register_leak_check() {
  static std::atomic<bool> registered{false};
  const char* on = std::getenv("MLPX_SIM_LEAK_CHECK");
  if (on == nullptr || std::strcmp(on, "1") != 0 || registered.exchange(true)) return;
  std::atexit(leak_check_at_exit);
}

void install_segv_handler() {
  register_leak_check();
  if (g_handler_installed.exchange(true)) return;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &g_previous_segv);
}

}  // namespace mlpx_sim::runtime_detail
