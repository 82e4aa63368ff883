// Support for Boost.Context's ucontext backend, which the simulator uses under
// AddressSanitizer (BOOST_USE_UCONTEXT + BOOST_USE_ASAN; see executor.cpp and CMakeLists.txt).
//
// The header-only fiber_ucontext.hpp declares, but does not define, the per-thread "current
// context" record and its initializer: Boost compiles those into libboost_context only when
// the library itself is built for ucontext. Debian's libboost-context 1.74 is built for
// fcontext (its library exports make_fcontext, jump_fcontext, ontop_fcontext and the stack
// traits only), so the definitions are provided here, with the semantics of Boost's own:
// a per-thread record for the thread's original context, created on first use and deleted
// when the thread ends.
#if defined(BOOST_USE_UCONTEXT)

#include <boost/context/fiber.hpp>
#include <cstddef>

namespace boost {
namespace context {
namespace detail {

namespace {
thread_local fiber_activation_record* t_current_record = nullptr;
thread_local std::size_t t_record_users = 0;
}  // namespace

fiber_activation_record_initializer::fiber_activation_record_initializer() noexcept {
  if (t_record_users++ == 0) t_current_record = new fiber_activation_record();
}

fiber_activation_record_initializer::~fiber_activation_record_initializer() {
  if (--t_record_users == 0) {
    delete t_current_record;
    t_current_record = nullptr;
  }
}

fiber_activation_record*& fiber_activation_record::current() noexcept {
  thread_local static fiber_activation_record_initializer initializer;
  return t_current_record;
}

}  // namespace detail
}  // namespace context
}  // namespace boost

#endif  // BOOST_USE_UCONTEXT
