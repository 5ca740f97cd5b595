//! CLI tests: each one spawns the built `sekisho` binary, against an in-process
//! [`TestAgent`](sekisho::testing::TestAgent) (port 0) when it needs an agent, and checks
//! exit codes and Consul's output texts.

mod acl;
mod agent;
mod catalog;
mod event;
mod keyring;
mod kv;
mod kv_sync;
mod local;
mod lock;
mod monitor;
mod pki;
mod readme;
mod reload_dns;
mod snapshot;
mod support;
mod template;
mod usage;
mod watch;
