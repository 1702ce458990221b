// bijou/bijou.hpp — umbrella header: every public header, nothing else.
#pragma once

#include "bijou/core/backend.hpp"
#include "bijou/core/chain.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/options.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/core/shape.hpp"
#include "bijou/core/stack.hpp"
#include "bijou/core/tensor.hpp"

#include "bijou/bijectors/actnorm.hpp"

#include "bijou/distributions/standard_normal.hpp"

#include "bijou/models/flow.hpp"
