//! Integration tests live in the `it` test binary; this library is empty on purpose.
