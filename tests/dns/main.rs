//! DNS integration tests: each test starts an in-process
//! [`TestAgent`](sekisho::testing::TestAgent) with DNS on a free port, registers catalog
//! entries over HTTP, and asks questions with hickory-proto messages over UDP and TCP.

mod health;
mod lookups;
mod prepared_query;
mod recursion;
mod robustness;
mod support;
mod truncation;
