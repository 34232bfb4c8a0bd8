//! `ManagedIdentityCredential`: the identity of the Azure host (from `entra-mi`).
//!
//! Every managed identity source (IMDS, App Service, Service Fabric, Azure Arc, Cloud Shell,
//! Azure Machine Learning) and the mTLS proof-of-possession opt-in (IMDSv2,
//! [`ManagedIdentityOptions::mtls_proof_of_possession`]) come from `entra-mi`; see its docs.

pub use entra_mi::{
    CREDENTIAL_NAME as MANAGED_IDENTITY_CREDENTIAL, ManagedIdentityCredential, ManagedIdentityId,
    ManagedIdentityOptions, ManagedIdentitySourceKind,
};
