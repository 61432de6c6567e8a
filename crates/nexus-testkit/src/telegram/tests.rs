//! Wire tests of the fake.
