//! `sekisho template`: consul-template's Go-template language over the catalog and KV.
//!
//! ```text
//!  engine  (pure): parse "{{ … }}" text → Template; render with a Functions backend
//!  runner         : Functions over the HTTP API; each key/service/… call is a dependency,
//!                   fetched with blocking queries; renders until every dependency is known,
//!                   writes the output atomically when it changed, runs the command after a
//!                   quiet period (-wait min:max)
//! ```

pub mod engine;
pub mod runner;
