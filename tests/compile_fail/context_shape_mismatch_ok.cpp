// Both couplings expect the context Shape<2>: the chain is conditional on Shape<2>.
#include <bijou/bijou.hpp>

int main() {
    using Step = bijou::Chain<bijou::ConditionalAffineCoupling<bijou::Shape<2>>, bijou::ConditionalAffineCoupling<bijou::Shape<2>>>;
    bijou::Transform<Step, bijou::Shape<4>> t;
    static_assert(std::is_same_v<decltype(t)::context_shape, bijou::Shape<2>>);
    return t.parameter_count() > 0 ? 0 : 1;
}
