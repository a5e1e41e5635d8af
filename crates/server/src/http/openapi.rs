//! The OpenAPI 3.1 document of the admin and device APIs, served at `/api/v1/openapi.json`.
//! Kept beside the routes; a test checks that every admin route is described.

use axum::http::header;
use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_parses_and_describes_every_admin_route() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let src = include_str!("admin.rs");
        // Every admin route literal in admin.rs appears in the document.
        let mut n = 0;
        for piece in src.split("\"/api/v1/admin/").skip(1) {
            let path = format!("/api/v1/admin/{}", piece.split('"').next().unwrap());
            assert!(
                paths.contains_key(&path),
                "{path} missing from openapi.json"
            );
            n += 1;
        }
        assert!(n >= 15, "found {n} routes");
        for p in ["/api/v1/register", "/api/v1/checkin", "/pki/crl.der"] {
            assert!(paths.contains_key(p), "{p}");
        }
    }

    #[test]
    fn document_describes_portal_storefront_and_appconnect_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for src in [
            include_str!("portal.rs"),
            include_str!("storefront.rs"),
            include_str!("directory.rs"),
        ] {
            for piece in src.split("\"/api/v1/admin/").skip(1) {
                let path = format!("/api/v1/admin/{}", piece.split('"').next().unwrap());
                assert!(
                    paths.contains_key(&path),
                    "{path} missing from openapi.json"
                );
            }
        }
        use ferrocore_proto::storefront_paths as sp;
        for p in [sp::APPS, sp::PACKAGE, sp::APPCONNECT_CHECKIN] {
            assert!(paths.contains_key(p), "{p} missing from openapi.json");
        }
    }
}
