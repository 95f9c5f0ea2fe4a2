//! The webhook's HTTP edge: routes, AdmissionReview in and out, limits, TLS, shutdown.

pub mod access;
pub mod routes;
pub mod server;
pub mod tls;
