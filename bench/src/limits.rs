//! The per-client limits the abuse bench runs every subject with, oneloop's
//! flags and nginx's `limit_conn`/`limit_req` alike (src/abuse.rs starts the
//! oneloops, src/subjects.rs writes nginx's configuration).

/// Connections one client address may hold.
pub const CONNECTIONS_PER_IP: u32 = 64;
/// Requests a second one client address may make...
pub const RATE_PER_IP: u32 = 1000;
/// ...and how many at once above that.
pub const RATE_BURST: u32 = 2000;
