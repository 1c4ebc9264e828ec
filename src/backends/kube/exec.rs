//! Commands in pods through the exec subresource, as `kubectl exec` runs them: kube-rs over a
//! websocket (`v5.channel.k8s.io`, else `v4`), the kubeconfig's credentials. The command is an
//! argv, each element one argument, never a shell line built from values. A check's output is
//! read like a shell check's (line count, matches, the number on the last line); an action
//! runs with a plan and an approval like every action.

use super::{
    Error, Kube, Render, deployment_selector, describe, list_pods, namespace, object_name,
};
use crate::backends::kinds::{ActionSpec, CheckSpec, fill, renderer};
use crate::backends::reading::Reading;
use crate::backends::shell::{self, Output};
use crate::backends::{BackendError, Live, Plan, PlanContext, Prepared};
use crate::spec::validate::Validator;
use crate::spec::{MAX_ROWS, S};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::io::BufReader;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sExec {
    #[serde(default)]
    pub namespace: Option<S<String>>,
    /// Which pod: by name, or the first ready pod of a deployment or a label selector.
    #[serde(default)]
    pub pod: Option<S<String>>,
    #[serde(default)]
    pub deployment: Option<S<String>>,
    #[serde(default)]
    pub selector: Option<S<String>>,
    /// The container (default: the pod's first, as kubectl).
    #[serde(default)]
    pub container: Option<S<String>>,
    /// The argv: `[nvidia-smi, --query-gpu=driver_version, --format=csv,noheader]`.
    pub command: Vec<S<String>>,
    /// Check only, as a shell check: count the lines that match, keep the last ones, or read
    /// the number on the last line.
    #[serde(default)]
    pub matches: Option<S<String>>,
    #[serde(default)]
    pub keep: Option<S<usize>>,
    #[serde(default)]
    pub number: bool,
}

/// A command rendered for one pod, ready to run.
pub struct Exec {
    ns: String,
    pod: Pick,
    container: Option<String>,
    argv: Vec<String>,
}

/// Which pod, before the cluster is asked.
enum Pick {
    Pod(String),
    Selector { selector: String, of: String },
    Deployment(String),
}

impl K8sExec {
    fn validate_common(&self, id: &S<String>, v: &mut Validator) {
        let named = [&self.pod, &self.deployment, &self.selector]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if named != 1 {
            v.problem(
                id,
                "k8s_exec needs exactly one of `pod`, `deployment` and `selector`".into(),
                None,
            );
        }
        if self.command.is_empty() {
            v.problem(
                id,
                "k8s_exec needs a `command`: a list, one argument each".into(),
                Some("command: [nvidia-smi, --query-gpu=driver_version, --format=csv]".into()),
            );
        }
        v.templates(
            self.namespace
                .iter()
                .chain(&self.pod)
                .chain(&self.deployment)
                .chain(&self.selector)
                .chain(&self.container)
                .chain(&self.command),
            "kubernetes field",
        );
        if let Some(program) = self.command.first()
            && (program.value.contains("{{") || program.value.contains("{%"))
        {
            v.problem(
                program,
                "the program of a k8s_exec command is a template: a value would choose what runs"
                    .into(),
                Some(
                    "name the program as written, and put values in the arguments after it".into(),
                ),
            );
        }
        if let Some(script) = script_index(&self.command).map(|i| &self.command[i])
            && let Some(offset) = crate::expr::quoted_placeholder(&script.value)
        {
            v.problem_inside(
                script,
                1,
                offset,
                "a template value inside quotes in a shell script (sh -c): the quotes would undo its quoting".into(),
                "write {{ value }} without quotes around it: oncall quotes every value for the shell",
            );
        }
    }

    fn render(&self, ctx: &Value, default_ns: &str) -> Result<Exec, BackendError> {
        let render: Render<'_> = &renderer(ctx);
        let ns = namespace(&self.namespace, render, default_ns)?;
        let pod = match (&self.pod, &self.deployment, &self.selector) {
            (Some(pod), _, _) => Pick::Pod(object_name(render(&pod.value)?, "pod")?),
            (None, Some(d), _) => Pick::Deployment(object_name(render(&d.value)?, "deployment")?),
            (None, None, Some(s)) => {
                let selector = render(&s.value)?;
                Pick::Selector {
                    of: selector.clone(),
                    selector,
                }
            }
            (None, None, None) => {
                return Err(Error::Spec {
                    what: "k8s_exec",
                    why: "no pod, deployment or selector".into(),
                }
                .into());
            }
        };
        let container = match &self.container {
            Some(c) => Some(object_name(render(&c.value)?, "container")?),
            None => None,
        };
        // Each element stays one argument, whatever its value holds; a shell script's values
        // are quoted for that shell, as in a shell check.
        let script = script_index(&self.command);
        let argv = self
            .command
            .iter()
            .enumerate()
            .map(|(i, a)| match script == Some(i) {
                true => crate::expr::render_shell(&a.value, ctx).map_err(BackendError::from),
                false => operand(&a.value, render(&a.value)?),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Exec {
            ns,
            pod,
            container,
            argv,
        })
    }

    fn shown(&self, ctx: &Value) -> String {
        let script = script_index(&self.command);
        let argv: Vec<String> =
            self.command
                .iter()
                .enumerate()
                .map(|(i, a)| match script == Some(i) {
                    true => crate::expr::render_shell(&a.value, ctx)
                        .unwrap_or_else(|_| fill(&a.value, ctx)),
                    false => fill(&a.value, ctx),
                })
                .collect();
        let of = match (&self.pod, &self.deployment, &self.selector) {
            (Some(p), _, _) => format!("pod/{}", fill(&p.value, ctx)),
            (None, Some(d), _) => format!("a ready pod of deployment/{}", fill(&d.value, ctx)),
            (None, None, Some(s)) => format!("a ready pod of {}", fill(&s.value, ctx)),
            _ => String::new(),
        };
        let container = self
            .container
            .as_ref()
            .map(|c| format!(" (container {})", fill(&c.value, ctx)))
            .unwrap_or_default();
        format!("exec {} in {of}{container}", quoted(&argv))
    }
}

/// Programs that read their `-c` argument as a script.
const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"];

/// Which element of the argv a shell reads as a script: the first operand after a `-c` (alone
/// or among other letters, `-ec`) when the program is a shell (also as `busybox sh`).
fn script_index(command: &[S<String>]) -> Option<usize> {
    let name = |i: usize| {
        command
            .get(i)
            .map(|a| a.value.rsplit('/').next().unwrap_or_default())
    };
    let program = match name(0)? {
        "busybox" => 1,
        _ => 0,
    };
    if !SHELLS.contains(&name(program)?) {
        return None;
    }
    let mut takes_script = false;
    for (i, arg) in command.iter().enumerate().skip(program + 1) {
        let arg = arg.value.as_str();
        match arg.strip_prefix('-') {
            Some(letters) if !letters.starts_with('-') && !letters.is_empty() => {
                takes_script |= letters.contains('c');
            }
            Some(_) => {}
            None if takes_script => return Some(i),
            None => return None,
        }
    }
    None
}

/// A rendered argument outside a script: a value may not make it start with `-`, where the
/// program would read it as an option. The runbook's own `--flag={{ value }}` is fine.
fn operand(template: &str, rendered: String) -> Result<String, BackendError> {
    if rendered.starts_with('-') && !template.starts_with('-') {
        return Err(Error::Spec {
            what: "k8s_exec command",
            why: format!(
                "the value '{rendered}' starts with '-': the command would take it as an option, so it is not run"
            ),
        }
        .into());
    }
    Ok(rendered)
}

/// The argv as a reader would type it: `nvidia-smi '--query-gpu=a b'`.
fn quoted(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=.,/:@%+".contains(&b));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl CheckSpec for K8sExec {
    const BACKEND: &'static str = "kubernetes";

    fn validate(&self, id: &S<String>, v: &mut Validator) {
        self.validate_common(id, v);
        v.count(self.keep.as_ref(), "`keep`", 1..=MAX_ROWS);
        if let Some(pattern) = &self.matches {
            v.regex(pattern);
        }
    }

    fn describe(&self, ctx: &Value) -> Option<String> {
        Some(format!("kubernetes: {}", self.shown(ctx)))
    }

    async fn read(
        &self,
        live: &Live,
        ctx: &Value,
        timeout: Duration,
    ) -> Result<Reading, BackendError> {
        let kube = &live.systems.kube;
        let (_, default_ns, _) = kube.client().await?;
        let exec = self.render(ctx, &default_ns)?;
        let (pattern, keep) = shell::pattern_and_keep(&self.matches, &self.keep)?;
        let out = run(kube, &exec, pattern.as_ref(), keep, timeout).await?;
        Ok(shell::reading(out, self.number)?)
    }
}

impl ActionSpec for K8sExec {
    fn validate(&self, id: &S<String>, v: &mut Validator) {
        self.validate_common(id, v);
        if self.matches.is_some() || self.keep.is_some() || self.number {
            v.problem(
                id,
                "`matches`, `keep` and `number` only apply to checks".into(),
                None,
            );
        }
    }

    async fn prepare(&self, ctx: &Value, with: &PlanContext<'_>) -> Result<Prepared, BackendError> {
        let default_ns = match with.systems {
            Some(systems) => systems.kube.default_namespace().await?,
            None => "default".into(),
        };
        let mut exec = self.render(ctx, &default_ns)?;
        let mut plan = Plan {
            backend: "kubernetes".into(),
            request: format!(
                "POST /api/v1/namespaces/{}/pods/{}/exec (websocket) {}",
                exec.ns,
                match &exec.pod {
                    Pick::Pod(name) => name.clone(),
                    _ => "POD".into(),
                },
                quoted(&exec.argv)
            ),
            ..Plan::default()
        };
        plan.changes.push(self.shown(ctx));
        if let Some(systems) = with.systems {
            plan.on = Some(systems.kube.describe());
            plan.production = systems.kube.production_context();
            // The pod it would run in, found now, so the plan names it.
            match tokio::time::timeout(super::PLAN_READ, pod_for(&systems.kube, &exec))
                .await
                .unwrap_or_else(|_| Err(Error::Other("no answer".into())))
            {
                Ok(pod) => {
                    plan.request = plan.request.replace("/pods/POD/", &format!("/pods/{pod}/"));
                    // The approved command runs in the pod the plan names, not one picked again.
                    exec.pod = Pick::Pod(pod);
                }
                Err(Error::NotFound { message }) => {
                    plan.missing = Some(format!("{message}: this action would fail"));
                }
                Err(Error::NoReadyPod(why)) => {
                    plan.missing = Some(format!("{why}: this action would fail"));
                }
                Err(_) => {}
            }
        }
        Ok(Prepared::new(
            plan,
            crate::backends::Request::Exec(Box::new(exec)),
        ))
    }
}

/// The pod to run in: the named one, or the first ready pod (by name) of the deployment or selector.
async fn pod_for(kube: &Kube, exec: &Exec) -> Result<String, Error> {
    let (client, _, server) = kube.client().await?;
    let (selector, of) = match &exec.pod {
        Pick::Pod(name) => return Ok(name.clone()),
        Pick::Deployment(name) => (
            deployment_selector(client.clone(), &exec.ns, name, &server).await?,
            format!("deployment/{name}"),
        ),
        Pick::Selector { selector, of } => (selector.clone(), of.clone()),
    };
    let api: Api<Pod> = Api::namespaced(client, &exec.ns);
    let mut pods = list_pods(&api, Some(&selector), &server).await?;
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods.iter()
        .find(|p| ready(p))
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| Error::NoReadyPod(format!("no ready pod of {of} in {}", exec.ns)))
}

fn ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Runs the command and reads its output to the end, or until the timeout closes the stream.
async fn run(
    kube: &Kube,
    exec: &Exec,
    pattern: Option<&regex::Regex>,
    keep: usize,
    timeout: Duration,
) -> Result<Output, Error> {
    let (client, _, server) = kube.client().await?;
    let work = async {
        let pod = pod_for(kube, exec).await?;
        let api: Api<Pod> = Api::namespaced(client, &exec.ns);
        let mut params = AttachParams::default()
            .stdin(false)
            .stdout(true)
            .stderr(true);
        if let Some(container) = &exec.container {
            params = params.container(container.clone());
        }
        let mut process = api
            .exec(&pod, exec.argv.clone(), &params)
            .await
            .map_err(|e| describe(e, &server))?;
        let stdout = process
            .stdout()
            .ok_or_else(|| Error::Other("no stdout".into()))?;
        let stderr = process
            .stderr()
            .ok_or_else(|| Error::Other("no stderr".into()))?;
        let status = process.take_status();
        let ((counted, kept), err_text) = tokio::join!(
            shell::collect(BufReader::new(stdout), pattern, keep),
            shell::read_capped(stderr)
        );
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        let _ = process.join().await;
        let code = exit_code(status.as_ref());
        // A failure without an exit code: the command did not run (no such executable on some
        // runtimes); the API server's message says why.
        if code.is_none()
            && let Some(status) = &status
            && status.status.as_deref() == Some("Failure")
        {
            return Err(Error::NotStarted(
                status
                    .message
                    .clone()
                    .unwrap_or_else(|| "no message".into()),
            ));
        }
        Ok(Output {
            status: code,
            counted,
            kept,
            stderr: err_text,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(done) => done,
        // Dropping the process closes the websocket: the API server ends the stream.
        Err(_) => Err(Error::ExecTimedOut {
            pod: exec.describe(),
            after: timeout,
        }),
    }
}

/// The command's exit code from the status the API server sends on the error channel: Success
/// is 0, a non-zero exit names its code; None when the stream ended without one.
fn exit_code(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) -> Option<i32> {
    let status = status?;
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse().ok())
}

impl Exec {
    fn describe(&self) -> String {
        let pod = match &self.pod {
            Pick::Pod(name) => format!("pod/{name}"),
            Pick::Deployment(name) => format!("a pod of deployment/{name}"),
            Pick::Selector { of, .. } => format!("a pod of {of}"),
        };
        format!("{} in {pod} ({})", quoted(&self.argv), self.ns)
    }
}

/// Runs an approved command; exit 0 is done, any other status fails the action.
pub(crate) async fn apply(
    kube: &Kube,
    exec: &Exec,
    timeout: Duration,
) -> Result<String, BackendError> {
    let out = run(kube, exec, None, 5, timeout).await?;
    let tail: Vec<String> = out.kept.into_iter().collect();
    match out.status {
        Some(0) => Ok(format!("exit 0 {}", tail.join(" | ")).trim().to_string()),
        status => Err(Error::ExecFailed {
            status,
            stderr: out.stderr.lines().last().unwrap_or("").trim().to_string(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argv_is_shown_as_it_would_be_typed() {
        let argv = ["nvidia-smi", "--format=csv,noheader", "a b", "it's"].map(String::from);
        assert_eq!(
            quoted(&argv),
            r"nvidia-smi --format=csv,noheader 'a b' 'it'\''s'"
        );
    }
}
