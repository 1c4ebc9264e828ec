//! HTTP to a service or a pod through the API server's proxy subresource, as `kubectl get --raw
//! /api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH` and `kubectl proxy` do, with the
//! kubeconfig's credentials: the in-cluster names reached from a laptop with no route to them.
//! A target is written `k8s://NAMESPACE/SERVICE:PORT/PATH` (or `k8s://NAMESPACE/pod/NAME:PORT/PATH`);
//! an empty namespace (`k8s:///api:8080/health`) is the cluster's default one.

use super::{Error, Kube, describe};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::time::Duration;

pub const SCHEME: &str = "k8s://";

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Service,
    Pod,
}

/// Where a proxied request goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// None: the cluster's default namespace.
    pub namespace: Option<String>,
    pub kind: Kind,
    pub name: String,
    pub port: String,
    /// The path and query on the service, starting with `/`.
    pub path: String,
}

/// A Kubernetes name (a namespace, service or pod), or a port number or name, checked as every
/// name oncall puts into a request path: values from outside cannot change its shape.
fn name_like(text: &str) -> bool {
    super::check_name(text, "name").is_ok()
}

impl Target {
    /// Parses `k8s://NAMESPACE/SERVICE:PORT/PATH`; None for any other URL.
    pub fn parse(url: &str) -> Option<Result<Target, String>> {
        let rest = url.strip_prefix(SCHEME)?;
        Some(Target::parse_rest(rest).map_err(|why| {
            format!(
                "'{url}' is not a service target: {why}; write k8s://NAMESPACE/SERVICE:PORT/PATH"
            )
        }))
    }

    fn parse_rest(rest: &str) -> Result<Target, String> {
        let (namespace, rest) = rest
            .split_once('/')
            .ok_or("no service after the namespace")?;
        let (kind, rest) = match rest.strip_prefix("pod/") {
            Some(rest) => (Kind::Pod, rest),
            None => (Kind::Service, rest),
        };
        let (name_port, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (name, port) = name_port
            .split_once(':')
            .ok_or("no port after the name (SERVICE:PORT)")?;
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Target::new(
            (!namespace.is_empty()).then(|| namespace.to_string()),
            kind,
            name,
            port,
            &path,
        )
    }

    pub fn new(
        namespace: Option<String>,
        kind: Kind,
        name: &str,
        port: &str,
        path: &str,
    ) -> Result<Target, String> {
        if let Some(ns) = &namespace
            && !name_like(ns)
        {
            return Err(format!("'{ns}' is not a namespace name"));
        }
        if !name_like(name) {
            return Err(format!("'{name}' is not a service or pod name"));
        }
        if !name_like(port) {
            return Err(format!("'{port}' is not a port number or name"));
        }
        if !path.starts_with('/') {
            return Err(format!("the path '{path}' does not start with /"));
        }
        // The API server decodes the path and joins it (`path.Join`), so an encoded `/` or a `..`
        // segment would reach another path on the service: refused, as values cannot move it.
        let path_only = path.split('?').next().unwrap_or_default();
        let lower = path_only.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") || path_only.contains('\\') {
            return Err(format!(
                "the path '{path}' holds an encoded / or \\, which the API server would decode into another path"
            ));
        }
        if path_only.split('/').any(|segment| {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            decoded == "." || decoded == ".."
        }) {
            return Err(format!(
                "the path '{path}' holds a . or .. segment, which the API server would resolve into another path"
            ));
        }
        Ok(Target {
            namespace,
            kind,
            name: name.to_string(),
            port: port.to_string(),
            path: path.to_string(),
        })
    }

    /// `service video/api-gateway` in namespace `ns` where it names none: what exists or not,
    /// whichever port is asked for.
    pub fn object(&self, ns: &str) -> String {
        let kind = match self.kind {
            Kind::Service => "service",
            Kind::Pod => "pod",
        };
        format!(
            "{kind} {}/{}",
            self.namespace.as_deref().unwrap_or(ns),
            self.name
        )
    }

    /// `service video-processing/api-gateway:8080`, as a plan names it.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            Kind::Service => "service",
            Kind::Pod => "pod",
        };
        let ns = self.namespace.as_deref().unwrap_or("(default namespace)");
        format!("{kind} {ns}/{}:{}", self.name, self.port)
    }

    /// As it is written: `k8s://video-processing/api-gateway:8080/health`.
    pub fn url(&self) -> String {
        let pod = if self.kind == Kind::Pod { "pod/" } else { "" };
        format!(
            "{SCHEME}{}/{pod}{}:{}{}",
            self.namespace.as_deref().unwrap_or_default(),
            self.name,
            self.port,
            self.path
        )
    }

    /// The API server's path for it, in namespace `ns`.
    pub fn api_path(&self, ns: &str) -> String {
        let plural = match self.kind {
            Kind::Service => "services",
            Kind::Pod => "pods",
        };
        format!(
            "/api/v1/namespaces/{}/{plural}/{}:{}/proxy{}",
            self.namespace.as_deref().unwrap_or(ns),
            self.name,
            self.port,
            self.path
        )
    }
}

/// What the service answered through the proxy.
pub struct Answer {
    pub content_type: String,
    /// Status and body, as a direct request's are read.
    pub body: crate::backends::Body,
}

/// Sends one request through the API server's proxy. An answer the API server gives itself (the
/// service or pod does not exist, has no endpoints, RBAC forbids the proxy) is an error naming
/// it; what the service answers, any status, is the answer.
pub async fn send(
    kube: &Kube,
    method: &reqwest::Method,
    target: &Target,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, Error> {
    let (client, ns, server) = kube.proxy_client().await?;
    let path = target.api_path(&ns);
    let mut request = http::Request::builder().method(method.as_str()).uri(&path);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(kube::client::Body::from(body.unwrap_or_default()))
        .map_err(|e| Error::Other(format!("cannot build the request for {path}: {e}")))?;
    let exchange = async {
        let response = client
            .send(request)
            .await
            .map_err(|e| describe(e, &server))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_string();
        let api_server = content_type.starts_with("application/json");
        let mut stream = response.into_body().into_data_stream();
        let mut bytes = Vec::new();
        let mut complete = true;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Unreachable {
                server: server.clone(),
                cause: e.to_string(),
            })?;
            if bytes.len() + chunk.len() > crate::backends::BODY_LIMIT {
                bytes.extend_from_slice(&chunk[..crate::backends::BODY_LIMIT - bytes.len()]);
                complete = false;
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status >= 400
            && api_server
            && let Some(refused) = status_of(&text, target)
        {
            if let Error::NotFound { message } = &refused {
                kube.proxied_not_found(&target.object(&ns), Some(message.clone()));
            }
            return Err(refused);
        }
        // It answered: there now, whatever an earlier read found (a re-check after it was made).
        kube.proxied_not_found(&target.object(&ns), None);
        Ok(Answer {
            content_type,
            body: crate::backends::Body {
                status,
                text,
                complete,
            },
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Error::Unreachable {
            server: server.clone(),
            cause: format!(
                "no answer within {} from {} through the API server",
                crate::backends::humanize(timeout),
                target.describe()
            ),
        })?
}

/// The API server's own error (a `Status`), not the service's answer.
fn status_of(text: &str, target: &Target) -> Option<Error> {
    let status: serde_json::Value = serde_json::from_str(text).ok()?;
    if status["kind"] != "Status" || status["apiVersion"] != "v1" {
        return None;
    }
    let code = status["code"].as_u64().unwrap_or(0) as u16;
    let message = format!(
        "{} through the API server's proxy: {}",
        target.describe(),
        status["message"].as_str().unwrap_or_default()
    );
    let reason = status["reason"].as_str().unwrap_or_default().to_string();
    Some(super::api_error(code, reason, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_parsed_and_names_stay_names() {
        let t = Target::parse("k8s://video/api-gateway:8080/health/db?x=1")
            .unwrap()
            .unwrap();
        assert_eq!(
            t.api_path("default"),
            "/api/v1/namespaces/video/services/api-gateway:8080/proxy/health/db?x=1"
        );
        assert_eq!(t.url(), "k8s://video/api-gateway:8080/health/db?x=1");
        let pod = Target::parse("k8s:///pod/gpu-0:http").unwrap().unwrap();
        assert_eq!(
            pod.api_path("ml"),
            "/api/v1/namespaces/ml/pods/gpu-0:http/proxy/"
        );
        assert!(Target::parse("http://x").is_none());
        for bad in [
            "k8s://video/api-gateway/health",
            "k8s://vi/deo/a:1",
            "k8s://video/a..b/:1",
            "k8s://video/a:80%2F..",
            "k8s://Video/a:1",
            "k8s://video/a:1/api/jobs/..%2F..%2Fadmin/retry",
            "k8s://video/a:1/api/../admin",
            "k8s://video/a:1/api/%2e%2E/admin",
        ] {
            assert!(Target::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
