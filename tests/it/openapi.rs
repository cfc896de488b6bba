//! The OpenAPI description (`api/openapi.yaml`) against the router: every route the API
//! serves is documented, every documented operation is served, and the document served at
//! `/openapi.yaml` is that file.
//!
//! The router cannot list its routes, so they are read from the `.route("…", get(…).post(…))`
//! calls in `src/api/*.rs` and then probed through the real router: a route that exists never
//! answers UnknownOperationException. A route added without documentation fails here, and so
//! does a routing style this reader does not understand (it says so rather than pass).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hickory_proto::rr::Name;
use http_body_util::BodyExt;
use r53::api::{router, ApiState, OPENAPI_YAML};
use r53::service::Service;
use r53::store::SledStore;
use serde_json::Value;
use tower::ServiceExt;

/// The HTTP methods an OpenAPI path item may hold, and axum's routing functions for them.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

type Routes = BTreeMap<String, BTreeSet<String>>;

/// `/a/{Id}/b` and `/a/{id}/b` are the same route.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

fn spec() -> serde_norway::Value {
    serde_norway::from_str(OPENAPI_YAML).expect("api/openapi.yaml is YAML")
}

/// (path shape → methods) as the spec documents them.
fn documented() -> Routes {
    let spec = spec();
    let paths = spec["paths"].as_mapping().expect("the spec has paths");
    let mut routes = Routes::new();
    for (path, item) in paths {
        let path = path.as_str().expect("paths are strings");
        let item = item.as_mapping().expect("a path item is a mapping");
        let methods: BTreeSet<String> = item
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| METHODS.contains(k))
            .map(str::to_owned)
            .collect();
        assert!(!methods.is_empty(), "{path} documents no operation");
        let previous = routes.insert(shape(path), methods);
        assert!(previous.is_none(), "{path} is documented twice");
    }
    routes
}

/// The index of the `)` that closes the `(` just before `text[start..]`.
fn closing_paren(text: &str, start: usize) -> Option<usize> {
    let mut depth = 1;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(start + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The method routers at the top level of a `.route(path, …)` call's handler argument:
/// `get(list).post(change)` → {get, post}.
fn chained_methods(handler: &str, file: &str) -> BTreeSet<String> {
    let mut methods = BTreeSet::new();
    let mut depth = 0;
    let mut word = String::new();
    for c in handler.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | ':' => word.push(c),
            '(' => {
                if depth == 0 && !word.is_empty() {
                    let name = word.rsplit("::").next().unwrap_or(&word).to_owned();
                    assert!(
                        METHODS.contains(&name.as_str()),
                        "{file}: a route uses `{word}(…)`, which this test cannot read; use get/post/put/delete/patch(…) chains or teach tests/it/openapi.rs"
                    );
                    methods.insert(name);
                }
                word.clear();
                depth += 1;
            }
            ')' => {
                word.clear();
                depth -= 1;
            }
            _ => word.clear(),
        }
    }
    methods
}

/// (path shape → methods) as `src/api/*.rs` routes them.
fn routed() -> Routes {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut routes = Routes::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("src/api is readable")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let file = file.display().to_string();
        for unsupported in [".nest(", ".nest_service(", ".route_service("] {
            assert!(
                !source.contains(unsupported),
                "{file} uses `{unsupported}`, whose paths this test cannot read; teach tests/it/openapi.rs"
            );
        }
        for (at, _) in source.match_indices(".route(") {
            let args_start = at + ".route(".len();
            let end = closing_paren(&source, args_start).expect("balanced parentheses");
            let args = source[args_start..end].trim_start();
            let path = args
                .strip_prefix('"')
                .and_then(|rest| rest.split_once('"'))
                .map(|(path, _)| path)
                .unwrap_or_else(|| {
                    panic!("{file}: a route's path is not a string literal, which this test cannot read: .route({args})")
                });
            let handler = args[path.len() + 2..].trim_start().trim_start_matches(',');
            let methods = chained_methods(handler, &file);
            assert!(
                !methods.is_empty(),
                "{file}: no methods read for route {path}"
            );
            routes.entry(shape(path)).or_default().extend(methods);
        }
    }
    assert!(!routes.is_empty(), "no routes found in {}", dir.display());
    routes
}

struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let service = Arc::new(Service::open(Arc::new(store)).unwrap());
        let router = router(ApiState {
            service,
            name_servers: Arc::new(vec![Name::from_ascii("ns1.r53.test.").unwrap()]),
            token: None,
            body_limit: 64 * 1024,
            resolver: None,
        });
        Self { router, _dir: dir }
    }

    /// Sends `method` to a concrete instance of the route `shape`; returns the status, the
    /// error code if the body is a Route 53 error, and the raw body.
    async fn probe(&self, method: &str, shape: &str) -> (StatusCode, Option<String>, Vec<u8>) {
        // Ids of the right form that name nothing: the handler runs and answers NoSuch….
        let id = if shape.contains("/change/") {
            "CNOSUCHCHANGE000001"
        } else {
            "ZNOSUCHZONE00001"
        };
        let path = shape.replace("{}", id);
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let body = if method == Method::POST {
            Body::from("{}")
        } else {
            Body::empty()
        };
        let request = Request::builder()
            .method(method)
            .uri(&path)
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let code = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["Error"]["Code"].as_str().map(str::to_owned));
        (status, code, bytes)
    }
}

fn is_unknown_operation(status: StatusCode, code: Option<&str>) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && code == Some("UnknownOperationException"))
}

#[test]
fn every_routed_operation_is_documented_and_the_other_way_round() {
    let routed = routed();
    let documented = documented();
    let undocumented: Vec<String> = routed
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .filter(|m| !documented.get(path).is_some_and(|d| d.contains(*m)))
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "routed but missing from api/openapi.yaml: {undocumented:?}"
    );
    let unrouted: Vec<String> = documented
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .filter(|m| !routed.get(path).is_some_and(|r| r.contains(*m)))
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    assert!(
        unrouted.is_empty(),
        "documented in api/openapi.yaml but not routed in src/api: {unrouted:?}"
    );
}

#[tokio::test]
async fn documented_operations_answer_and_other_methods_are_unknown() {
    let api = Api::new();
    for (path, methods) in documented() {
        for method in ["get", "put", "post", "delete", "patch"] {
            let (status, code, body) = api.probe(method, &path).await;
            let unknown = is_unknown_operation(status, code.as_deref());
            let body = String::from_utf8_lossy(&body);
            if methods.contains(method) {
                assert!(
                    !unknown,
                    "{method} {path} is documented but the router does not serve it: {status} {body}"
                );
            } else {
                assert!(
                    unknown,
                    "{method} {path} is not documented but the router serves it: {status} {body}"
                );
            }
        }
    }
    // A path nobody routes is an UnknownOperationException in Route 53's error shape.
    let (status, code, _) = api.probe("get", "/2013-04-01/healthcheck").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code.as_deref(), Some("UnknownOperationException"));
}

#[tokio::test]
async fn the_served_document_is_api_openapi_yaml() {
    let api = Api::new();
    let (status, _, body) = api.probe("get", "/openapi.yaml").await;
    assert_eq!(status, StatusCode::OK);
    let on_disk =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("api/openapi.yaml"))
            .unwrap();
    assert_eq!(String::from_utf8(body).unwrap(), on_disk);
    assert!(spec()["openapi"].as_str().unwrap().starts_with("3.0."));
}

#[test]
fn documented_record_types_are_the_ones_r53_serves() {
    let spec = spec();
    let documented: BTreeSet<String> = spec["components"]["schemas"]["RRType"]["enum"]
        .as_sequence()
        .expect("RRType is an enum")
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let served: BTreeSet<String> = r53::model::ALL_TYPES
        .iter()
        .map(|t| r53::model::type_name(*t))
        .collect();
    assert_eq!(documented, served);

    // Each type has exactly one record-set shape, and the discriminator maps it there.
    let schemas = &spec["components"]["schemas"];
    let set = &schemas["ResourceRecordSet"];
    let mut shaped = Vec::new();
    for variant in set["oneOf"]
        .as_sequence()
        .expect("ResourceRecordSet is a oneOf")
    {
        let reference = variant["$ref"].as_str().unwrap();
        let name = reference.rsplit('/').next().unwrap();
        for t in schemas[name]["properties"]["Type"]["enum"]
            .as_sequence()
            .unwrap()
        {
            let t = t.as_str().unwrap();
            assert_eq!(
                set["discriminator"]["mapping"][t].as_str(),
                Some(reference),
                "the discriminator maps {t} elsewhere"
            );
            shaped.push(t.to_owned());
        }
    }
    let unique: BTreeSet<String> = shaped.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        shaped.len(),
        "a type has two shapes: {shaped:?}"
    );
    assert_eq!(unique, served);
}

#[test]
fn every_operation_documents_its_errors_in_route53s_shape() {
    let spec = spec();
    let ids: Vec<String> = spec["paths"]
        .as_mapping()
        .unwrap()
        .values()
        .flat_map(|item| {
            item.as_mapping()
                .unwrap()
                .iter()
                .filter(|(k, _)| METHODS.contains(&k.as_str().unwrap_or_default()))
                .map(|(_, op)| {
                    let id = op["operationId"]
                        .as_str()
                        .expect("every operation has an id");
                    let responses = op["responses"].as_mapping().expect("responses");
                    assert!(
                        responses.keys().any(|k| k.as_str() == Some("401")),
                        "{id} does not document 401 AccessDenied"
                    );
                    id.to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds repeat: {ids:?}");
    for id in [
        "CreateHostedZone",
        "ListHostedZones",
        "GetHostedZone",
        "DeleteHostedZone",
        "ChangeResourceRecordSets",
        "ListResourceRecordSets",
        "GetChange",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} is not documented");
    }
}
