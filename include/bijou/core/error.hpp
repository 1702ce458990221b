// bijou/core/error.hpp — the exception hierarchy.
//
// Contract: every error a user can cause (bad shapes at the API edge, bad options, bad files,
// non-finite values where they are not allowed) is thrown as a type derived from bijou::error,
// with a message that starts with "bijou: " and names what was wrong and where.
// Programmer errors inside the library are assert()s, not exceptions.
#pragma once

#include <stdexcept>
#include <string>

namespace bijou {

/// Base of every exception bijou throws.
class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error("bijou: " + what) {}
};

/// A runtime shape did not match the static one (batch tensors at the API edge).
class shape_error : public error {
public:
    using error::error;
};

/// An option or argument is outside its valid range.
class invalid_argument : public error {
public:
    using error::error;
};

/// A value that must be finite was not (loss, gradient, parameter, determinant).
class numerical_error : public error {
public:
    using error::error;
};

/// A file could not be read or written, or its contents are invalid.
class io_error : public error {
public:
    using error::error;
};

/// A data-parallel job failed: an MPI call returned an error, or the processes disagree (their
/// parameters diverged, their batches do not add up). bijou/distributed/ throws it.
class distributed_error : public error {
public:
    using error::error;
};

}  // namespace bijou
