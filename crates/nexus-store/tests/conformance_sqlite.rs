//! The storage conformance suite on SQLite (a temporary database file per test).

nexus_store::store_conformance_tests!(nexus_store::testing::Harness::sqlite());
