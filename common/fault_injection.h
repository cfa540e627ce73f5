// Test-only fault injection, compiled in only with -DCASTGATE_FAULT_INJECTION=ON (the sanitizer
// build that `make test` runs the end-to-end suite against; never the release build or the
// container image). It proves that an exception anywhere in a session's code ends that session
// only: with CASTGATE_TEST_FAULT="WHERE:MARKER" in castgate's environment, fault_point(WHERE,
// text) throws when `text` contains MARKER. "WHERE!abort:MARKER" aborts the process instead, and
// "WHERE!forbidden:MARKER" first tries what the worker sandbox forbids (creating a file).
#pragma once

#include <string_view>

namespace castgate {

#ifdef CASTGATE_FAULT_INJECTION
void fault_point(std::string_view where, std::string_view text);
inline constexpr bool kFaultInjection = true;
#else
inline void fault_point(std::string_view, std::string_view) {}
inline constexpr bool kFaultInjection = false;
#endif

}  // namespace castgate
