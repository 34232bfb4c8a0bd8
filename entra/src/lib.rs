//! The entra-rs facade (being written).
