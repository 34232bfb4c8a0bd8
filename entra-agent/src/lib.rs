//! Agent identities for entra-rs (work in progress in this commit: the crate is being written).
