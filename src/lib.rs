//! The `jiebanke` binary's library: configuration, telemetry and `Application`, which wires the
//! storage, the domain, the gateway and the REST shell into one server; `demo` fills a store
//! with a demo world through that server. `main.rs` stays tiny so that tests and other binaries
//! build the same server.

pub mod app;
pub mod config;
pub mod demo;
#[doc(hidden)]
pub mod fuzzing;
pub mod listener;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
