//! The enrollment writes of the storage tests (registration, EST and SCEP enrollment,
//! renewal, SCEP renewal, migration), each one call of `DeviceStore::apply_enrollment` or
//! `DeviceStore::apply_reissue`, so the scenarios read as the state changes they make.
#![allow(dead_code)]

use ferrocore_core::error::Result;
use ferrocore_core::store::traits::DeviceStore;
use ferrocore_core::store::{
    CertRecord, EnrollmentWrite, GrantUse, Registration, ReissueKind, ReissueWrite, ScepGrant,
    ScepRequestKey,
};
use ferrocore_proto::GrantProtocol;

#[async_trait::async_trait]
pub trait ApplyExt {
    async fn apply_registration(&self, reg: &Registration, at: i64) -> Result<String>;
    async fn apply_est_enrollment(
        &self,
        reg: &Registration,
        token_hash: Option<&str>,
        at: i64,
    ) -> Result<String>;
    async fn apply_scep_enrollment(
        &self,
        reg: &Registration,
        grant: &ScepGrant,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<String>;
    async fn apply_renewal(
        &self,
        device_id: &str,
        new: &CertRecord,
        authenticated_with: &str,
        at: i64,
    ) -> Result<()>;
    async fn apply_scep_renewal(
        &self,
        device_id: &str,
        new: &CertRecord,
        authenticated_with: &str,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<()>;
    async fn apply_migration(&self, device_id: &str, new: &CertRecord, at: i64) -> Result<()>;
}

fn enrollment(
    reg: &Registration,
    grant: Option<GrantUse>,
    scep_request: Option<ScepRequestKey>,
) -> EnrollmentWrite {
    EnrollmentWrite {
        registration: reg.clone(),
        grant,
        scep_request,
    }
}

fn renewal(
    device_id: &str,
    new: &CertRecord,
    authenticated_with: &str,
    scep_request: Option<ScepRequestKey>,
) -> ReissueWrite {
    ReissueWrite {
        device_id: device_id.to_owned(),
        cert: new.clone(),
        kind: ReissueKind::Renewal {
            authenticated_with: authenticated_with.to_owned(),
        },
        scep_request,
    }
}

#[async_trait::async_trait]
impl<S: DeviceStore + ?Sized> ApplyExt for S {
    async fn apply_registration(&self, reg: &Registration, at: i64) -> Result<String> {
        let w = enrollment(reg, None, None);
        Ok(self.apply_enrollment(&w, at).await?.device_id)
    }

    async fn apply_est_enrollment(
        &self,
        reg: &Registration,
        token_hash: Option<&str>,
        at: i64,
    ) -> Result<String> {
        let grant = token_hash.map(|h| GrantUse {
            protocol: GrantProtocol::Est,
            secret_hash: h.to_owned(),
        });
        let w = enrollment(reg, grant, None);
        Ok(self.apply_enrollment(&w, at).await?.device_id)
    }

    async fn apply_scep_enrollment(
        &self,
        reg: &Registration,
        grant: &ScepGrant,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<String> {
        // A static challenge is configuration, not a one-time grant: nothing to consume.
        let one_time = grant.static_config.is_none().then(|| GrantUse {
            protocol: GrantProtocol::Scep,
            secret_hash: grant.hash.clone(),
        });
        let w = enrollment(reg, one_time, Some(request.clone()));
        Ok(self.apply_enrollment(&w, at).await?.device_id)
    }

    async fn apply_renewal(
        &self,
        device_id: &str,
        new: &CertRecord,
        authenticated_with: &str,
        at: i64,
    ) -> Result<()> {
        let w = renewal(device_id, new, authenticated_with, None);
        self.apply_reissue(&w, at).await.map(drop)
    }

    async fn apply_scep_renewal(
        &self,
        device_id: &str,
        new: &CertRecord,
        authenticated_with: &str,
        request: &ScepRequestKey,
        at: i64,
    ) -> Result<()> {
        let w = renewal(device_id, new, authenticated_with, Some(request.clone()));
        self.apply_reissue(&w, at).await.map(drop)
    }

    async fn apply_migration(&self, device_id: &str, new: &CertRecord, at: i64) -> Result<()> {
        let w = ReissueWrite {
            device_id: device_id.to_owned(),
            cert: new.clone(),
            kind: ReissueKind::Migration,
            scep_request: None,
        };
        self.apply_reissue(&w, at).await.map(drop)
    }
}
