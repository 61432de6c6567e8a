//! Retry of serialization failures (being written).
