// bijou/core/emits.hpp — how a compile-time diagnostic reports exactly once.
// A check that fails names `emits<&Diagnostic::emit>` in a member alias; naming &F in a template
// argument odr-uses F, so F's body (a sentence static_assert, then a named undefined template: two
// errors) is instantiated once per distinct violation. Used by core/diagnostics.hpp (Chain elements,
// Stack steps) and core/context.hpp (context shapes).
#pragma once

namespace bijou::detail {

template <auto F>
struct emits {};

}  // namespace bijou::detail
