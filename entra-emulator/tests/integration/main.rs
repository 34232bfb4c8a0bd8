//! Integration tests: real HTTP over real TLS against a running emulator.

mod admin;
mod agent;
mod assertion;
mod common;
mod discovery;
mod faults;
mod federated;
mod request_log;
mod secret;
