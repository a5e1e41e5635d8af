//! Ferrocore's domain: registration, check-ins, the mutual-authentication setting, devices,
//! certificates and users. It does no network IO and reads no clock of its own: storage,
//! directory, certificate issuance and time arrive as traits at construction.
//!
//! Code map: [`rules`] (Tables 2 and 4), [`service`] (the operations), [`enrollment`] (the
//! one enrollment pipeline) and [`provisioners`] (one per enrollment method), [`grants`] (one-time enrollment grants: SCEP
//! challenges and EST tokens), [`store`] (the storage
//! interface), [`directory`] (user authentication), [`directory_sources`] (AD / LDAP sources,
//! lockout guard, directory users), [`issuance`] (the certificate pipeline and CRL
//! publication), [`scep_operation`] (the SCEP PKIOperation dispatch and failInfo),
//! [`scep_access`] (SCEP GetCert / GetCRL), [`clock`], [`error`].

pub mod clock;
pub mod directory;
pub mod directory_sources;
pub mod enrollment;
pub mod error;
pub mod est;
pub mod grants;
pub mod issuance;
pub mod ocsp;
pub mod provisioners;
pub mod rules;
pub mod scep_access;
pub mod scep_operation;
pub mod service;
pub mod store;
pub mod storefront;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{CoreError, Result};
pub use service::Core;
