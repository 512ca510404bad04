//! What a listener serves, as its driver sees it: the service its
//! connections' sessions share, and the TLS it speaks, if any. Startup makes
//! one per port for each driver (`server::Services::endpoints`).

use std::sync::Arc;

use super::tls::TlsConfig;
use crate::session::Service;
use crate::stats::{DriverKind, DriverStats};

#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) service: Arc<Service>,
    pub(crate) tls: Option<Arc<TlsConfig>>,
}

/// What startup hands each driver it starts: the driver's own counters, and
/// its endpoints, by port, counting into them (each driver has its own
/// application, and so its own caches).
pub(crate) trait Endpoints {
    fn for_driver(&self, kind: DriverKind) -> (Arc<DriverStats>, Vec<Endpoint>);
}
