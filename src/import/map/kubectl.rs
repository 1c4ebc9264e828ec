//! `kubectl`: reads of pods, deployments, events and logs become Kubernetes checks; scale,
//! rollout restart, patch and delete pod become actions; `exec … -- curl localhost` becomes a
//! direct HTTP call to the deployment's service, and other `exec`s a `k8s_exec`.

use super::curl::{self, Request};
use super::{Args, Ctx, Mapped, Native, log_lines};
use crate::import::shell::Word;
use crate::import::yaml::Y;
use crate::import::{readonly, secret};

/// The flags a native form says, each with a value. Any other (`--context`, `--dry-run=client`,
/// `--as`, `--field-selector`) would be dropped, so a command with one stays as written.
const FLAGS: &[&str] = &[
    "-n",
    "--namespace",
    "-l",
    "--selector",
    "--since",
    "--tail",
    "-c",
    "--container",
    "-p",
    "--patch",
    "--type",
    "--replicas",
    "-o",
    "--output",
];

pub fn map(words: &[Word], filters: &[Vec<Word>], ctx: &mut Ctx) -> Option<Mapped> {
    let args = Args::read(words, FLAGS);
    if !args.others(FLAGS).is_empty() {
        return None;
    }
    let ns = args.get(&["-n", "--namespace"]).map(str::to_string);
    let pos: Vec<&str> = args.pos.iter().map(String::as_str).collect();
    match pos.as_slice() {
        ["get", what, rest @ ..]
            if filters.is_empty() && args.get(&["-o", "--output"]).is_none() =>
        {
            get(what, rest, &args, ns.as_deref(), ctx)
        }
        ["logs", target] => logs(target, &args, filters, ns.as_deref(), ctx),
        ["logs"] if args.get(&["-l", "--selector"]).is_some() => {
            logs("", &args, filters, ns.as_deref(), ctx)
        }
        _ if !filters.is_empty() => None,
        ["scale", rest @ ..] => scale(rest, &args, ns.as_deref(), ctx),
        ["rollout", "restart", rest @ ..] => {
            let name = deployment(rest)?;
            let spec = Y::map([
                ("namespace", ctx.namespace(ns.as_deref())),
                ("deployment", Some(Y::Str(ctx.text(name)))),
            ]);
            Some(Mapped::one(Native::action(
                "k8s_restart",
                format!("restart_{}", super::ident(name)),
                spec,
            )))
        }
        ["patch", kind, name] => patch(kind, name, &args, ns.as_deref(), ctx),
        ["patch", target] => {
            let (kind, name) = target.split_once('/')?;
            patch(kind, name, &args, ns.as_deref(), ctx)
        }
        ["delete", "pod" | "pods" | "po", pod] => Some(delete_pod(pod, ns.as_deref(), ctx)),
        ["delete", target] => Some(delete_pod(target.strip_prefix("pod/")?, ns.as_deref(), ctx)),
        ["exec", target] => exec(target, &args, ns.as_deref(), ctx),
        _ => None,
    }
}

fn delete_pod(pod: &str, ns: Option<&str>, ctx: &mut Ctx) -> Mapped {
    let spec = Y::map([
        ("namespace", ctx.namespace(ns)),
        ("pod", Some(Y::Str(ctx.text(pod)))),
    ]);
    Mapped::one(Native::action(
        "k8s_delete_pod",
        format!("delete_pod_{}", super::ident(pod)),
        spec,
    ))
}

fn get(what: &str, rest: &[&str], args: &Args, ns: Option<&str>, ctx: &mut Ctx) -> Option<Mapped> {
    let (what, rest) = match what.split_once('/') {
        Some((kind, name)) if rest.is_empty() => (kind, vec![name]),
        _ => (what, rest.to_vec()),
    };
    let selector = args.get(&["-l", "--selector"]);
    match (what, rest.as_slice()) {
        ("pods" | "pod" | "po", []) => {
            let name = selector.map_or("pods".to_string(), |s| {
                format!("pods_{}", super::ident(s.rsplit('=').next().unwrap_or(s)))
            });
            let spec = Y::map([
                ("namespace", ctx.namespace(ns)),
                ("selector", selector.map(|s| Y::Str(ctx.text(s)))),
            ]);
            Some(Mapped::one(Native::check("k8s_pods", name, spec)))
        }
        ("deployment" | "deployments" | "deploy", [name]) if selector.is_none() => {
            let spec = Y::map([
                ("namespace", ctx.namespace(ns)),
                ("name", Some(Y::Str(ctx.text(name)))),
            ]);
            Some(Mapped::one(Native::check(
                "k8s_deployment",
                format!("{}_deployment", super::ident(name)),
                spec,
            )))
        }
        ("events" | "event" | "ev", [])
            if selector.is_none() && !args.has(&["--field-selector"]) =>
        {
            let spec = Y::map([("namespace", ctx.namespace(ns))]);
            Some(Mapped::one(Native::check("k8s_events", "events", spec)))
        }
        _ => None,
    }
}

/// `kubectl logs deployment/X --since=1h | grep P`: the lines that match, counted.
fn logs(
    target: &str,
    args: &Args,
    filters: &[Vec<Word>],
    ns: Option<&str>,
    ctx: &mut Ctx,
) -> Option<Mapped> {
    if args.has(&["-f", "--follow", "-p", "--previous", "-c", "--container"]) {
        return None;
    }
    let (matches, keep) = log_lines(filters, args)?;
    let selector = args.get(&["-l", "--selector"]);
    let deployment = match target.split_once('/') {
        Some(("deployment" | "deploy" | "deployments", name)) => Some(name),
        None if target.is_empty() && selector.is_some() => None,
        _ => return None,
    };
    let name = deployment.or(selector).unwrap_or("pods");
    let spec = Y::map([
        ("namespace", ctx.namespace(ns)),
        ("deployment", deployment.map(|d| Y::Str(ctx.text(d)))),
        ("selector", selector.map(|s| Y::Str(ctx.text(s)))),
        ("since", args.get(&["--since"]).map(Y::str)),
        ("matches", Some(Y::str(super::literal(&matches)))),
        ("keep", keep.map(|k| Y::Int(k as i64))),
    ]);
    let mut check = Native::check(
        "k8s_logs",
        format!("{}_log_lines", super::ident(name)),
        spec,
    );
    check.unit = Some("lines".into());
    Some(Mapped::one(check))
}

fn deployment<'a>(rest: &[&'a str]) -> Option<&'a str> {
    match rest {
        [target] => match target.split_once('/') {
            Some(("deployment" | "deploy" | "deployments", name)) => Some(name),
            _ => None,
        },
        ["deployment" | "deploy" | "deployments", name] => Some(name),
        _ => None,
    }
}

fn scale(rest: &[&str], args: &Args, ns: Option<&str>, ctx: &mut Ctx) -> Option<Mapped> {
    let name = deployment(rest)?;
    let replicas: i64 = args.get(&["--replicas"])?.parse().ok()?;
    let spec = Y::map([
        ("namespace", ctx.namespace(ns)),
        ("deployment", Some(Y::Str(ctx.text(name)))),
        ("replicas", Some(Y::Int(replicas))),
    ]);
    Some(Mapped::one(Native::action(
        "k8s_scale",
        format!("scale_{}_to_{replicas}", super::ident(name)),
        spec,
    )))
}

fn patch(kind: &str, name: &str, args: &Args, ns: Option<&str>, ctx: &mut Ctx) -> Option<Mapped> {
    let kind = match kind {
        "deployment" | "deploy" | "deployments" => "deployment",
        "configmap" | "cm" | "configmaps" => "configmap",
        _ => return None,
    };
    if args
        .get(&["--type"])
        .is_some_and(|t| t != "merge" && t != "strategic")
    {
        return None;
    }
    let patch: serde_json::Value = serde_json::from_str(args.get(&["-p", "--patch"])?).ok()?;
    if !patch.is_object()
        || crate::spec::validate::json_strings(&patch)
            .iter()
            .any(|s| s.contains("{{") || s.contains("{%"))
    {
        return None;
    }
    let spec = Y::map([
        ("namespace", ctx.namespace(ns)),
        ("kind", Some(Y::str(kind))),
        ("name", Some(Y::Str(ctx.text(name)))),
        ("patch", Some(Y::from_json(&patch))),
    ]);
    Some(Mapped::one(Native::action(
        "k8s_patch",
        format!("patch_{}", super::ident(name)),
        spec,
    )))
}

/// `kubectl exec [-n NS] deployment/X -- CMD…`.
fn exec(target: &str, args: &Args, ns: Option<&str>, ctx: &mut Ctx) -> Option<Mapped> {
    if args.rest.is_empty() || args.has(&["-i", "-t", "-it", "--stdin", "--tty"]) {
        return None;
    }
    let (pod, deployment) = match target.split_once('/') {
        Some(("deployment" | "deploy", name)) => (None, Some(name)),
        Some(("pod" | "po", name)) => (Some(name), None),
        None => (Some(target), None),
        _ => return None,
    };
    let inner = &args.rest;
    if inner[0].value == "curl"
        && let Some(mapped) = exec_curl(&inner[1..], deployment, ns, ctx)
    {
        return Some(mapped);
    }
    let argv: Vec<&str> = inner.iter().map(|w| w.value.as_str()).collect();
    let found = secret::in_words(&argv);
    let command: Vec<Y> = inner
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let here = secret::at(&found, i);
            Y::Str(ctx.with_secrets(&w.value, &here, "", |ctx, s| ctx.text(s)))
        })
        .collect();
    let judged = readonly::judge_argv(&argv);
    let name = super::ident(&format!(
        "{}_{}",
        deployment.or(pod).unwrap_or("pod"),
        argv[0]
    ));
    let container = args
        .get(&["-c", "--container"])
        .map(|c| Y::Str(ctx.text(c)));
    let spec = Y::map([
        ("namespace", ctx.namespace(ns)),
        ("deployment", deployment.map(|d| Y::Str(ctx.text(d)))),
        ("pod", pod.map(|p| Y::Str(ctx.text(p)))),
        ("container", container),
        ("command", Some(Y::Seq(command))),
    ]);
    let item = match judged {
        Ok(()) => Native::check("k8s_exec", name, spec),
        Err(why) => Native::action("k8s_exec", name, spec).review(why),
    };
    Some(Mapped::one(item))
}

/// `kubectl exec deployment/X -- curl http://localhost:PORT/PATH`: the service named after the
/// deployment, through the API server's proxy (as kubectl's exec went through the API server),
/// or the cluster's Prometheus for a query.
fn exec_curl(
    words: &[Word],
    deployment: Option<&str>,
    ns: Option<&str>,
    ctx: &mut Ctx,
) -> Option<Mapped> {
    let args = Args::read(words, curl::WITH_VALUE);
    let request = Request::read(&args, &[])?;
    if !matches!(request.url.host_str(), Some("localhost" | "127.0.0.1")) {
        return None;
    }
    if curl::prometheus_query(&request.url).is_some() {
        return curl::map(words, &[], ctx);
    }
    let deployment = deployment?;
    let port = request.url.port_or_known_default()?;
    let ns = ns.unwrap_or("default");
    let name = super::ident(deployment);
    let base = ctx.endpoint(
        &name,
        &format!("k8s://{ns}/{deployment}:{port}"),
        format!("The {deployment} service (port {port}), through the Kubernetes API server's proxy as the page's kubectl exec went; a direct URL in the config skips it"),
    );
    curl::http(request, ctx, Some(base))
}
