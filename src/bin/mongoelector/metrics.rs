//! `--metrics-addr HOST:PORT`: the library's metrics (see the guide's
//! metrics page), served in the Prometheus text format at
//! `http://HOST:PORT/metrics` by the exporter's own thread while the tool
//! runs.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::exit::{Failure, UNAVAILABLE};

/// Starts serving the metrics at `addr`, when one is given.
pub fn serve(addr: Option<SocketAddr>) -> Result<(), Failure> {
    let Some(addr) = addr else {
        return Ok(());
    };
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| Failure::new(UNAVAILABLE, &format!("serving metrics at {addr}"), e))
}
