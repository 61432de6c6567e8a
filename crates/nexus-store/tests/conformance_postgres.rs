//! The storage conformance suite on PostgreSQL: a fresh database per test on the server
//! `NEXUS_TEST_POSTGRES_URL` names (start one with `eval "$(scripts/services/postgres.sh)"`).
//! Without it the tests are skipped with a notice, or fail when `CI=true`.

nexus_store::store_conformance_tests!(nexus_store::testing::Harness::postgres());
