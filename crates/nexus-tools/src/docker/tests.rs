//! Unit tests of the Docker backend parts that need no engine.
