//! `sekisho-wan`: I/O-free federation logic (datacenter router, coordinates, replication
//! cursor, gateway routing table). Filled in by the federation issue.
//!
//! # Layout
//! - [`coordinate`]: Vivaldi network coordinates as Serf computes them: a node's own estimator
//!   ([`CoordinateClient`]), the [`Coordinate`] type with Consul's JSON shape, distance
//!   estimates, and [`sort_by_distance`] for `?near=`.
//! - [`router`]: per-datacenter server lists from WAN membership, failover order, and the
//!   datacenters sorted by median RTT.
//! - [`replication`]: the cursor (index, backoff, status, lag) and diff of a secondary
//!   datacenter's pull of the primary's ACL objects.
//! - [`gateway`]: federation gateways: the SNI of a TLS ClientHello, what it names, and the
//!   routing table (this datacenter's servers, other datacenters' gateways).
#![warn(missing_docs)]

pub mod coordinate;
pub mod gateway;
pub mod replication;
pub mod router;

pub use coordinate::{
    Client as CoordinateClient, ClientStats as CoordinateStats, Config as CoordinateConfig, Coordinate,
    CoordinateError, sort_by_distance,
};
pub use router::{RouteError, Router, ServerInfo};
