//! The OpenAPI 3.1 document of every route of the admin, device, storefront and PKI routers,
//! generated from the handlers' `#[utoipa::path]` annotations and the wire types' schemas
//! (`ferrocore_proto`, `ToSchema`), served at `/api/v1/openapi.json`. A test compares the
//! routes the routers register with the document's operations.

use axum::http::header;
use axum::response::IntoResponse;
use ferrocore_proto::ErrorBody;
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

/// The document itself.
#[utoipa::path(
    get, path = ferrocore_proto::paths::OPENAPI, tag = "health",
    responses((status = 200, description = "This OpenAPI document", body = Object))
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferrocore",
        description = "Device-management core: device enrollment and check-ins, the admin API \
                       (bearer token, admin listener only), the app storefront and PKI \
                       publication (CRLs, CA certificates, OCSP, SCEP, EST). Every refusal is \
                       `{\"error\": {\"code\", \"message\"}}` with a stable code."
    ),
    paths(document, super::healthz),
    components(schemas(ErrorBody))
)]
struct Root;

/// Name of the admin API's security scheme.
const ADMIN_TOKEN: &str = "admin_token";

/// The whole document: every module's routes, each with its refusal (`4XX`, [`ErrorBody`]),
/// the admin routes behind the bearer token.
pub fn build() -> utoipa::openapi::OpenApi {
    let mut doc = Root::openapi();
    for part in [
        super::admin::Api::openapi(),
        super::portal::Api::openapi(),
        super::storefront::Api::openapi(),
        super::scep::Api::openapi(),
        super::device::Api::openapi(),
        super::est::Api::openapi(),
        super::ocsp::Api::openapi(),
        super::directory::Api::openapi(),
    ] {
        doc.merge(part);
    }
    // `POST /ocsp/` is `POST /ocsp` for clients that append a slash to the responder URL.
    if let Some(post) = doc.paths.paths.get("/ocsp").and_then(|i| i.post.clone()) {
        let mut alias = utoipa::openapi::PathItem::default();
        alias.post = Some(post);
        doc.paths.paths.insert("/ocsp/".into(), alias);
    }
    doc.components.get_or_insert_default().add_security_scheme(
        ADMIN_TOKEN,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    let admin_prefix = format!("{}/", ferrocore_proto::paths::ADMIN);
    let refused = ResponseBuilder::new()
        .description("Refused: `{\"error\": {\"code\", \"message\"}}` with a stable code")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        let admin = path.starts_with(&admin_prefix);
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("4XX".into())
                .or_insert_with(|| refused.clone().into());
            if admin {
                op.security = Some(vec![SecurityRequirement::new(
                    ADMIN_TOKEN,
                    Vec::<String>::new(),
                )]);
            }
        }
    }
    doc
}

/// The document as served (built once).
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    build()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use ferrocore_proto::{paths, storefront_paths};
    use std::collections::BTreeSet;

    /// The sources of the modules that register routes.
    const SOURCES: &[(&str, &str)] = &[
        ("mod.rs", include_str!("mod.rs")),
        ("admin.rs", include_str!("admin.rs")),
        ("device.rs", include_str!("device.rs")),
        ("est.rs", include_str!("est.rs")),
        ("ocsp.rs", include_str!("ocsp.rs")),
        ("portal.rs", include_str!("portal.rs")),
        ("scep.rs", include_str!("scep.rs")),
        ("storefront.rs", include_str!("storefront.rs")),
        ("directory.rs", include_str!("directory.rs")),
    ];

    /// Router modules that register no route of their own.
    const NO_ROUTES: &[&str] = &[
        "auth.rs",
        "client_identity.rs",
        "edge.rs",
        "error.rs",
        "json.rs",
        "openapi.rs",
    ];

    #[test]
    fn every_http_module_is_read_by_the_route_check() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") && !NO_ROUTES.contains(&name.as_str()) {
                assert!(
                    SOURCES.iter().any(|(f, _)| *f == name),
                    "src/http/{name} is not in SOURCES: its routes would go unchecked"
                );
            }
        }
    }

    /// The text inside the parentheses opening at `open` (which is `(`).
    fn inside(s: &str, open: usize) -> &str {
        let mut depth = 0;
        for (i, c) in s[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &s[open + 1..open + i];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced parentheses after {}", &s[open..]);
    }

    /// The value of a route's path expression.
    fn path_value(expr: &str, file: &str) -> String {
        let expr = expr.trim();
        if let Some(lit) = expr.strip_prefix('"') {
            return lit.trim_end_matches('"').to_owned();
        }
        if let Some(f) = expr.strip_prefix("&format!(\"") {
            let f = f.trim_end_matches("\")");
            return f
                .replace("{PREFIX}", super::super::est::PREFIX)
                .replace("{{", "{")
                .replace("}}", "}");
        }
        let name = expr.rsplit("::").next().unwrap();
        let constants = [
            ("paths::REGISTER", paths::REGISTER),
            ("paths::CHECKIN", paths::CHECKIN),
            ("paths::RENEW", paths::RENEW),
            ("paths::MIGRATE", paths::MIGRATE),
            ("paths::CSR_ATTRIBUTES", paths::CSR_ATTRIBUTES),
            ("paths::CRL_DER", paths::CRL_DER),
            ("paths::CRL_PEM", paths::CRL_PEM),
            ("paths::CA_PEM", paths::CA_PEM),
            ("paths::SCEP", paths::SCEP),
            ("paths::OPENAPI", paths::OPENAPI),
            ("storefront_paths::APPS", storefront_paths::APPS),
            ("storefront_paths::PACKAGE", storefront_paths::PACKAGE),
            (
                "storefront_paths::APPCONNECT_CHECKIN",
                storefront_paths::APPCONNECT_CHECKIN,
            ),
            ("storefront_paths::IDENTITY", storefront_paths::IDENTITY),
        ];
        constants
            .iter()
            .find(|(k, _)| expr.ends_with(k) && k.ends_with(name))
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_else(|| panic!("{file}: route path {expr:?}: add it to this test's table"))
    }

    /// `METHOD path` of every route the routers register (read from their sources).
    fn registered_routes() -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (file, src) in SOURCES {
            let code: String = src
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let code = code.split("#[cfg(test)]").next().unwrap();
            for (at, _) in code.match_indices(".route(") {
                let args = inside(code, at + ".route".len());
                let (path_expr, methods) = args.split_once(',').unwrap();
                let path = path_value(path_expr, file).replace("{*", "{");
                let mut found = 0;
                for m in ["get", "post", "put", "patch", "delete"] {
                    let call = format!("{m}(");
                    found += methods
                        .match_indices(&call)
                        .filter(|(i, _)| {
                            *i == 0 || !methods.as_bytes()[i - 1].is_ascii_alphanumeric()
                        })
                        .inspect(|_| {
                            out.insert(format!("{} {path}", m.to_uppercase()));
                        })
                        .count();
                }
                assert!(found > 0, "{file}: no method in route {args}");
            }
        }
        out
    }

    /// `METHOD path` of every operation the document describes.
    fn documented_operations(doc: &serde_json::Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                    out.insert(format!("{} {path}", m.to_uppercase()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let doc: serde_json::Value = serde_json::from_str(&super::DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let routes = registered_routes();
        let documented = documented_operations(&doc);
        assert!(routes.len() > 60, "found only {} routes", routes.len());
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routes).collect();
        assert!(
            undocumented.is_empty(),
            "routes without documentation: {undocumented:#?}"
        );
        assert!(unrouted.is_empty(), "documented, not routed: {unrouted:#?}");
    }

    #[test]
    fn admin_operations_need_the_token_and_schemas_resolve() {
        let doc: serde_json::Value = serde_json::from_str(&super::DOCUMENT).unwrap();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes[super::ADMIN_TOKEN]["scheme"], "bearer", "{schemes}");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert_eq!(
                    op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}"
                );
                let secured = op["security"][0].get(super::ADMIN_TOKEN).is_some();
                assert_eq!(
                    secured,
                    path.starts_with("/api/v1/admin/"),
                    "{method} {path}"
                );
            }
        }
        // Every `$ref` names a schema of the document.
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        // Request and answer bodies of a typical admin route are described.
        let devices = &doc["paths"]["/api/v1/admin/devices"]["get"];
        let params: Vec<&str> = devices["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(params.contains(&"last_checkin_after"), "{params:?}");
        let register = &doc["paths"][paths::REGISTER]["post"];
        assert_eq!(
            register["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/RegisterRequest"
        );
        assert!(schemas["Device"]["properties"]["device_uuid"].is_object());
    }
}
