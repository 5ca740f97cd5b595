//! `sekisho-acl`: ACL policy parsing (HCL and JSON) and the authorizer (exact beats prefix,
//! longest prefix wins, deny > write > list > read). Filled in by the ACL issue; no I/O.
#![warn(missing_docs)]
