//! Object storage (being written).
