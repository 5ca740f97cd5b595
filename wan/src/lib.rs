//! `sekisho-wan`: I/O-free federation logic (datacenter router, coordinates, replication
//! cursor, gateway routing table). Filled in by the federation issue.
#![warn(missing_docs)]
