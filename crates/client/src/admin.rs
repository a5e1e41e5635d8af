//! [`AdminClient`]: the admin API (`/api/v1/admin/...`), one typed method per route. The
//! `ferrocore admin` CLI and the black-box tests are layers over it.

use crate::{ClientError, ClientOptions, Method, Response, TlsClient, Url};
use ferrocore_proto::{
    App, AppListQuery, AssignPolicy, CertListQuery, Certificate, Device, DeviceDetail,
    DeviceListQuery, EnrollmentChange, EnrollmentConfig, EnrollmentGrant, EstTokenCreated,
    EstTokenRequest, GrantListQuery, NewEnrollmentConfig, NewScepChallenge, NewUser, Page,
    PageQuery, Policy, PolicyChange, PortSettingsRequest, PortalCert, PortalCertUpload,
    PublishQuery, RenewalRisk, RevokeRequest, ScepChallenge, SelectEnrollment, Settings,
    StaticScepChallenge, StorefrontAuth, StorefrontSettings, SweepResult, User, paths, percent,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A client of one server's admin API (bearer token, server verified against given roots).
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: TlsClient,
    /// `https://host:port`
    origin: String,
}

impl AdminClient {
    /// `url`: the admin listener (`https://host:port`, a path is ignored); `ca_pem`: the
    /// certificates the server's certificate must chain to; `token`: the admin token.
    pub fn new(url: &str, ca_pem: &str, token: &str) -> Result<Self, ClientError> {
        let http = TlsClient::new(
            ca_pem,
            None,
            ClientOptions {
                bearer_token: Some(token.to_owned()),
                ..ClientOptions::default()
            },
        )?;
        Self::with_client(http, url)
    }

    /// Over a ready client (which sends the token itself).
    pub fn with_client(http: TlsClient, url: &str) -> Result<Self, ClientError> {
        let origin = Url::parse_https(url)?.origin();
        Ok(AdminClient { http, origin })
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &TlsClient {
        &self.http
    }

    // ------------------------------------------------------------------ settings

    /// `GET /settings`
    pub async fn settings(&self) -> Result<Settings, ClientError> {
        self.get("/settings").await
    }

    /// `POST /settings/mutual-auth/enable`
    pub async fn enable_mutual_auth(&self) -> Result<Settings, ClientError> {
        self.post_empty("/settings/mutual-auth/enable").await
    }

    /// `POST /settings/mutual-auth/disable`
    pub async fn disable_mutual_auth(&self) -> Result<Settings, ClientError> {
        self.post_empty("/settings/mutual-auth/disable").await
    }

    /// `PUT /settings/ports`: the sync-TLS port switch.
    pub async fn set_ports(&self, req: &PortSettingsRequest) -> Result<Settings, ClientError> {
        self.send_json(Method::PUT, "/settings/ports", req).await
    }

    /// `PUT /settings/mutual-auth/enrollment`: a dry run unless `req.confirm`.
    pub async fn select_enrollment(
        &self,
        req: &SelectEnrollment,
    ) -> Result<EnrollmentChange, ClientError> {
        self.send_json(Method::PUT, "/settings/mutual-auth/enrollment", req)
            .await
    }

    /// `GET /settings/storefront-auth`
    pub async fn storefront_auth(&self) -> Result<StorefrontSettings, ClientError> {
        self.get("/settings/storefront-auth").await
    }

    /// `PUT /settings/storefront-auth`
    pub async fn set_storefront_auth(
        &self,
        mode: StorefrontAuth,
    ) -> Result<StorefrontSettings, ClientError> {
        let body = StorefrontSettings {
            storefront_auth: mode,
        };
        self.send_json(Method::PUT, "/settings/storefront-auth", &body)
            .await
    }

    // ------------------------------------------------------------------ users

    /// `GET /users`
    pub async fn users(&self) -> Result<Vec<User>, ClientError> {
        self.get("/users").await
    }

    /// `POST /users`
    pub async fn add_user(&self, user: &NewUser) -> Result<User, ClientError> {
        self.send_json(Method::POST, "/users", user).await
    }

    /// `DELETE /users/{username}`
    pub async fn remove_user(&self, username: &str) -> Result<(), ClientError> {
        self.delete(&format!("/users/{}", seg(username))).await
    }

    // ------------------------------------------------------------------ devices

    /// `GET /devices?...`
    pub async fn devices(&self, q: &DeviceListQuery) -> Result<Page<Device>, ClientError> {
        self.get(&format!("/devices{}", query(q)?)).await
    }

    /// `GET /devices/{id}`: the device, its certificates and recent check-ins.
    pub async fn device(&self, id: &str) -> Result<DeviceDetail, ClientError> {
        self.get(&format!("/devices/{}", seg(id))).await
    }

    /// `POST /devices/{id}/retire`
    pub async fn retire_device(&self, id: &str) -> Result<Device, ClientError> {
        self.post_empty(&format!("/devices/{}/retire", seg(id)))
            .await
    }

    /// `PUT /devices/{id}/policy`
    pub async fn assign_policy(&self, id: &str, policy: &str) -> Result<Device, ClientError> {
        let body = AssignPolicy {
            policy: policy.to_owned(),
        };
        self.send_json(Method::PUT, &format!("/devices/{}/policy", seg(id)), &body)
            .await
    }

    // ------------------------------------------------------------------ reports, maintenance

    /// `GET /reports/renewal-at-risk?...`
    pub async fn renewal_at_risk(&self, q: &PageQuery) -> Result<Page<RenewalRisk>, ClientError> {
        self.get(&format!("/reports/renewal-at-risk{}", query(q)?))
            .await
    }

    /// `POST /maintenance/sweep`: retire devices past the renewal grace now.
    pub async fn sweep(&self) -> Result<SweepResult, ClientError> {
        self.post_empty("/maintenance/sweep").await
    }

    // ------------------------------------------------------------------ directory

    /// `GET /directory/test`: each source's service bind, lockout policy and timings, and
    /// with `user` that user's entry and groups (JSON as the server reports it).
    pub async fn directory_test(
        &self,
        source: Option<&str>,
        user: Option<&str>,
    ) -> Result<serde_json::Value, ClientError> {
        #[derive(Serialize)]
        struct Q<'a> {
            source: Option<&'a str>,
            user: Option<&'a str>,
        }
        self.get(&format!("/directory/test{}", query(&Q { source, user })?))
            .await
    }

    /// `GET /directory/users`: local and directory users with their source and state.
    pub async fn directory_users(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/directory/users").await
    }

    /// `GET /directory/groups`: each source's enrolling groups, group policies and lockout.
    pub async fn directory_groups(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/directory/groups").await
    }

    /// `GET /directory/attempts`: failed-password state (of one user, or all).
    pub async fn directory_attempts(
        &self,
        user: Option<&str>,
    ) -> Result<serde_json::Value, ClientError> {
        #[derive(Serialize)]
        struct Q<'a> {
            user: Option<&'a str>,
        }
        self.get(&format!("/directory/attempts{}", query(&Q { user })?))
            .await
    }

    /// `DELETE /directory/attempts/{user}`: forget a user's failed attempts.
    pub async fn directory_clear_attempts(
        &self,
        user: &str,
    ) -> Result<serde_json::Value, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/directory/attempts/{}", seg(user)),
            None,
            Vec::new(),
        )
        .await?
        .json()
    }

    /// `GET /store`: database and write-ahead-log sizes, the WAL limit and truncations.
    pub async fn store_status(&self) -> Result<ferrocore_proto::StoreStatus, ClientError> {
        self.get("/store").await
    }

    // ------------------------------------------------------------------ policies

    /// `GET /policies`
    pub async fn policies(&self) -> Result<Vec<Policy>, ClientError> {
        self.get("/policies").await
    }

    /// `GET /policies/{name}`
    pub async fn policy(&self, name: &str) -> Result<Policy, ClientError> {
        self.get(&format!("/policies/{}", seg(name))).await
    }

    /// `POST /policies/{name}`: create (unset values from the default policy).
    pub async fn create_policy(
        &self,
        name: &str,
        change: &PolicyChange,
    ) -> Result<Policy, ClientError> {
        self.send_json(Method::POST, &format!("/policies/{}", seg(name)), change)
            .await
    }

    /// `PATCH /policies/{name}`
    pub async fn change_policy(
        &self,
        name: &str,
        change: &PolicyChange,
    ) -> Result<Policy, ClientError> {
        self.send_json(Method::PATCH, &format!("/policies/{}", seg(name)), change)
            .await
    }

    /// `DELETE /policies/{name}`
    pub async fn delete_policy(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("/policies/{}", seg(name))).await
    }

    // ------------------------------------------------------------------ enrollment

    /// `GET /enrollment-configs`
    pub async fn enrollment_configs(&self) -> Result<Vec<EnrollmentConfig>, ClientError> {
        self.get("/enrollment-configs").await
    }

    /// `POST /enrollment-configs/{name}`
    pub async fn add_enrollment_config(
        &self,
        name: &str,
        config: &NewEnrollmentConfig,
    ) -> Result<EnrollmentConfig, ClientError> {
        let path = format!("/enrollment-configs/{}", seg(name));
        self.send_json(Method::POST, &path, config).await
    }

    /// `POST /est-tokens`: a one-time EST token (its secret is in the answer only).
    pub async fn create_est_token(
        &self,
        req: &EstTokenRequest,
    ) -> Result<EstTokenCreated, ClientError> {
        self.send_json(Method::POST, "/est-tokens", req).await
    }

    /// `POST /scep/challenges`: a one-time SCEP challenge.
    pub async fn create_scep_challenge(
        &self,
        req: &NewScepChallenge,
    ) -> Result<ScepChallenge, ClientError> {
        self.send_json(Method::POST, "/scep/challenges", req).await
    }

    /// `PUT /scep/static-challenges/{config}`
    pub async fn set_static_scep_challenge(
        &self,
        config: &str,
        req: &StaticScepChallenge,
    ) -> Result<ScepChallenge, ClientError> {
        let path = format!("/scep/static-challenges/{}", seg(config));
        self.send_json(Method::PUT, &path, req).await
    }

    /// `DELETE /scep/static-challenges/{config}`
    pub async fn clear_static_scep_challenge(&self, config: &str) -> Result<(), ClientError> {
        self.delete(&format!("/scep/static-challenges/{}", seg(config)))
            .await
    }

    /// `GET /grants?...`: one-time enrollment grants, newest first.
    pub async fn grants(&self, q: &GrantListQuery) -> Result<Page<EnrollmentGrant>, ClientError> {
        self.get(&format!("/grants{}", query(q)?)).await
    }

    /// `GET /grants/{id}`
    pub async fn grant(&self, id: &str) -> Result<EnrollmentGrant, ClientError> {
        self.get(&format!("/grants/{}", seg(id))).await
    }

    /// `POST /grants/{id}/revoke`
    pub async fn revoke_grant(&self, id: &str) -> Result<EnrollmentGrant, ClientError> {
        self.post_empty(&format!("/grants/{}/revoke", seg(id)))
            .await
    }

    // ------------------------------------------------------------------ certificates

    /// `GET /certificates?...`
    pub async fn certificates(&self, q: &CertListQuery) -> Result<Page<Certificate>, ClientError> {
        self.get(&format!("/certificates{}", query(q)?)).await
    }

    /// `POST /certificates/{serial}/revoke`
    pub async fn revoke_certificate(
        &self,
        serial: &str,
        req: &RevokeRequest,
    ) -> Result<Certificate, ClientError> {
        let path = format!("/certificates/{}/revoke", seg(serial));
        self.send_json(Method::POST, &path, req).await
    }

    // ------------------------------------------------------------------ portal certificate

    /// `GET /portal-cert`
    pub async fn portal_cert(&self) -> Result<PortalCert, ClientError> {
        self.get("/portal-cert").await
    }

    /// `PUT /portal-cert`: validated, then served without restart.
    pub async fn upload_portal_cert(
        &self,
        upload: &PortalCertUpload,
    ) -> Result<PortalCert, ClientError> {
        self.send_json(Method::PUT, "/portal-cert", upload).await
    }

    /// `POST /portal-cert/rollback`
    pub async fn rollback_portal_cert(&self) -> Result<PortalCert, ClientError> {
        self.post_empty("/portal-cert/rollback").await
    }

    // ------------------------------------------------------------------ storefront

    /// `GET /apps?...`
    pub async fn apps(&self, q: &AppListQuery) -> Result<Vec<App>, ClientError> {
        self.get(&format!("/apps{}", query(q)?)).await
    }

    /// `POST /apps?platform=&name=&version=` with the package as the body.
    pub async fn publish_app(
        &self,
        q: &PublishQuery,
        package: Vec<u8>,
    ) -> Result<App, ClientError> {
        self.call(
            Method::POST,
            &format!("/apps{}", query(q)?),
            Some("application/octet-stream"),
            package,
        )
        .await?
        .json()
    }

    /// `DELETE /apps/{id}`
    pub async fn remove_app(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/apps/{}", seg(id))).await
    }

    // ------------------------------------------------------------------ documentation

    /// `GET /api/v1/openapi.json` (beside the admin API, on the same listener).
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}{}", self.origin, paths::OPENAPI);
        self.http.get_json(&url).await
    }

    // ------------------------------------------------------------------ plumbing

    /// One request to `ADMIN_PREFIX + path` (path and query already escaped).
    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        let url = format!("{}{}{path}", self.origin, paths::ADMIN);
        let mut headers = vec![("accept", "application/json")];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        self.http.request(&url, method, &headers, body).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None, Vec::new()).await?.json()
    }

    async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::POST, path, None, Vec::new())
            .await?
            .json()
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(method, path, Some("application/json"), bytes)
            .await?
            .json()
    }

    async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, path, None, Vec::new())
            .await?
            .empty()
    }
}

/// One path segment, escaped.
fn seg(s: &str) -> String {
    percent::encode(s)
}

/// `?k=v&...` of a query struct's set fields (`""` when none is set).
fn query<Q: Serialize>(q: &Q) -> Result<String, ClientError> {
    let value = serde_json::to_value(q).map_err(|e| ClientError::Decode(e.to_string()))?;
    let serde_json::Value::Object(fields) = value else {
        return Err(ClientError::Decode("a query must be a struct".into()));
    };
    let pairs: Vec<String> = fields
        .into_iter()
        .filter_map(|(k, v)| {
            let v = match v {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some(format!("{}={}", percent::encode(&k), percent::encode(&v)))
        })
        .collect();
    Ok(if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_carry_the_set_fields_escaped() -> Result<(), ClientError> {
        let q = DeviceListQuery {
            username: Some("a b&c".into()),
            in_renewal_window: Some(true),
            limit: Some(5),
            ..DeviceListQuery::default()
        };
        let s = query(&q)?;
        assert!(s.starts_with('?'), "{s}");
        let mut pairs: Vec<&str> = s[1..].split('&').collect();
        pairs.sort_unstable();
        assert_eq!(
            pairs,
            ["in_renewal_window=true", "limit=5", "username=a%20b%26c"]
        );
        assert_eq!(query(&DeviceListQuery::default())?, "");
        Ok(())
    }
}
