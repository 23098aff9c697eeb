//! `candidate.toml`: how to build a candidate, which profile it claims, and the app knobs the
//! contract needs.
//!
//! The manifest is typed and strict: an unknown key is an error naming the file and line, because
//! a misspelt knob (`slow_endpont`) silently ignored would turn into a vacuous pass later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The parsed `candidate.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Candidate name, used in reports and trial names.
    pub name: String,
    /// The profile the candidate claims (`gofastr` or `gofr`), with its position for errors.
    pub profile: toml::Spanned<String>,
    /// The framework's Go module path, e.g. `gofr.dev`.
    pub framework_module: String,
    /// The pinned framework version, e.g. `v1.56.6`.
    pub framework_version: String,
    /// One line about the candidate.
    #[serde(default)]
    pub description: String,
    /// How to build it from source. Exactly one of `build` and `binary` is given.
    pub build: Option<BuildSpec>,
    /// A prebuilt binary, relative to the candidate directory.
    pub binary: Option<PathBuf>,
    /// Files and directories (relative to the candidate directory) that a deployment ships beside
    /// the binary; they are copied into every working directory (GoFr's `configs/`).
    #[serde(default)]
    pub ship: Vec<PathBuf>,
    /// App knobs the scenarios need.
    #[serde(default)]
    pub knobs: Knobs,
}

/// How to build a candidate with `go build`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The Go package to build, relative to the candidate directory.
    #[serde(default = "default_package")]
    pub package: String,
    /// `-ldflags` value.
    #[serde(default)]
    pub ldflags: String,
    /// Go build tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_package() -> String {
    ".".into()
}

/// Endpoints and names in the candidate app that clauses need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knobs {
    /// A slow endpoint; `{ms}` is replaced with the delay in milliseconds.
    pub slow_endpoint: Option<String>,
    /// An endpoint that requires authentication.
    pub protected_endpoint: Option<String>,
    /// An endpoint echoing an environment variable; `{key}` is replaced with its name.
    pub echo_env_endpoint: Option<String>,
    /// The table of the app's entity or migration.
    pub entity_table: Option<String>,
    /// The environment variable carrying the JWT secret.
    pub jwt_secret_env: Option<String>,
    /// An endpoint that answers 500.
    pub error_endpoint: Option<String>,
    /// A server-sent-events endpoint that stays open.
    pub stream_endpoint: Option<String>,
    /// The environment variable giving the base URL of a dependent HTTP service the app registers.
    pub dependency_url_env: Option<String>,
    /// The environment variable choosing the app's auth mode (`none`, `basic`, `apikey`, `oauth`).
    pub auth_mode_env: Option<String>,
    /// The environment variable that turns on the auth battery's dev mode (`1`).
    pub auth_dev_mode_env: Option<String>,
    /// The environment variable mapped to the app's shutdown timeout (a Go duration).
    pub shutdown_timeout_env: Option<String>,
    /// The environment variable mapped to the app's per-request timeout (a Go duration).
    pub request_timeout_env: Option<String>,
    /// The environment variable that makes the app's startup hook fail (`1`).
    pub fail_on_start_env: Option<String>,
    /// The `-X` link target selecting the entity schema version (`v1`, `v2`).
    pub schema_variant_var: Option<String>,
    /// Prefix of the line the app prints on stdout once listening, followed by the address.
    pub ready_line_prefix: Option<String>,
    /// A route with one path parameter, written as its template (`/items/{id}`); scenarios fill
    /// in the parameter and expect the template in route-labelled metrics.
    pub param_endpoint: Option<String>,
    /// An endpoint that records the app's custom metrics once per request (GoFr: the
    /// `conformance_*` instruments of the reference candidate, see its README).
    pub custom_metrics_endpoint: Option<String>,
    /// The environment variable (`=1`) that keeps the app from installing its own tracer
    /// provider while the `OTEL_EXPORTER_OTLP_*` variables still point at a collector (GoFastr:
    /// the framework alone must export nothing).
    pub tracer_off_env: Option<String>,
    /// An endpoint whose handler logs, through the request context's logger and in this order,
    /// `conformance-log` (INFO), `conformance-debug` (DEBUG), `conformance-warn` (WARN) and
    /// `conformance-error` (ERROR) (GoFr's logging clauses).
    pub log_endpoint: Option<String>,
    /// The environment variable that turns the framework's own signal handling off (`1`).
    pub signal_handling_off_env: Option<String>,
}

/// One knob of [`Knobs`], by name: what a clause declares it needs, so the engine can tell
/// before running it whether the candidate can be graded on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// [`Knobs::slow_endpoint`].
    SlowEndpoint,
    /// [`Knobs::protected_endpoint`].
    ProtectedEndpoint,
    /// [`Knobs::echo_env_endpoint`].
    EchoEnvEndpoint,
    /// [`Knobs::entity_table`].
    EntityTable,
    /// [`Knobs::jwt_secret_env`].
    JwtSecretEnv,
    /// [`Knobs::error_endpoint`].
    ErrorEndpoint,
    /// [`Knobs::stream_endpoint`].
    StreamEndpoint,
    /// [`Knobs::dependency_url_env`].
    DependencyUrlEnv,
    /// [`Knobs::auth_mode_env`].
    AuthModeEnv,
    /// [`Knobs::auth_dev_mode_env`].
    AuthDevModeEnv,
    /// [`Knobs::shutdown_timeout_env`].
    ShutdownTimeoutEnv,
    /// [`Knobs::request_timeout_env`].
    RequestTimeoutEnv,
    /// [`Knobs::fail_on_start_env`].
    FailOnStartEnv,
    /// [`Knobs::schema_variant_var`].
    SchemaVariantVar,
    /// [`Knobs::ready_line_prefix`].
    ReadyLinePrefix,
    /// [`Knobs::param_endpoint`].
    ParamEndpoint,
    /// [`Knobs::custom_metrics_endpoint`].
    CustomMetricsEndpoint,
    /// [`Knobs::tracer_off_env`].
    TracerOffEnv,
    /// [`Knobs::log_endpoint`].
    LogEndpoint,
    /// [`Knobs::signal_handling_off_env`].
    SignalHandlingOffEnv,
}

impl Knob {
    /// Every knob, in `candidate.toml`'s documented order.
    pub const ALL: [Knob; 20] = [
        Knob::SlowEndpoint,
        Knob::ProtectedEndpoint,
        Knob::EchoEnvEndpoint,
        Knob::EntityTable,
        Knob::JwtSecretEnv,
        Knob::ErrorEndpoint,
        Knob::StreamEndpoint,
        Knob::DependencyUrlEnv,
        Knob::AuthModeEnv,
        Knob::AuthDevModeEnv,
        Knob::ShutdownTimeoutEnv,
        Knob::RequestTimeoutEnv,
        Knob::FailOnStartEnv,
        Knob::SchemaVariantVar,
        Knob::ReadyLinePrefix,
        Knob::ParamEndpoint,
        Knob::CustomMetricsEndpoint,
        Knob::TracerOffEnv,
        Knob::LogEndpoint,
        Knob::SignalHandlingOffEnv,
    ];

    /// Its key under `[knobs]` in `candidate.toml`.
    pub fn key(self) -> &'static str {
        match self {
            Knob::SlowEndpoint => "slow_endpoint",
            Knob::ProtectedEndpoint => "protected_endpoint",
            Knob::EchoEnvEndpoint => "echo_env_endpoint",
            Knob::EntityTable => "entity_table",
            Knob::JwtSecretEnv => "jwt_secret_env",
            Knob::ErrorEndpoint => "error_endpoint",
            Knob::StreamEndpoint => "stream_endpoint",
            Knob::DependencyUrlEnv => "dependency_url_env",
            Knob::AuthModeEnv => "auth_mode_env",
            Knob::AuthDevModeEnv => "auth_dev_mode_env",
            Knob::ShutdownTimeoutEnv => "shutdown_timeout_env",
            Knob::RequestTimeoutEnv => "request_timeout_env",
            Knob::FailOnStartEnv => "fail_on_start_env",
            Knob::SchemaVariantVar => "schema_variant_var",
            Knob::ReadyLinePrefix => "ready_line_prefix",
            Knob::ParamEndpoint => "param_endpoint",
            Knob::CustomMetricsEndpoint => "custom_metrics_endpoint",
            Knob::TracerOffEnv => "tracer_off_env",
            Knob::LogEndpoint => "log_endpoint",
            Knob::SignalHandlingOffEnv => "signal_handling_off_env",
        }
    }
}

impl Knobs {
    /// The value of `knob`, when the manifest sets it.
    pub fn get(&self, knob: Knob) -> Option<&str> {
        let value = match knob {
            Knob::SlowEndpoint => &self.slow_endpoint,
            Knob::ProtectedEndpoint => &self.protected_endpoint,
            Knob::EchoEnvEndpoint => &self.echo_env_endpoint,
            Knob::EntityTable => &self.entity_table,
            Knob::JwtSecretEnv => &self.jwt_secret_env,
            Knob::ErrorEndpoint => &self.error_endpoint,
            Knob::StreamEndpoint => &self.stream_endpoint,
            Knob::DependencyUrlEnv => &self.dependency_url_env,
            Knob::AuthModeEnv => &self.auth_mode_env,
            Knob::AuthDevModeEnv => &self.auth_dev_mode_env,
            Knob::ShutdownTimeoutEnv => &self.shutdown_timeout_env,
            Knob::RequestTimeoutEnv => &self.request_timeout_env,
            Knob::FailOnStartEnv => &self.fail_on_start_env,
            Knob::SchemaVariantVar => &self.schema_variant_var,
            Knob::ReadyLinePrefix => &self.ready_line_prefix,
            Knob::ParamEndpoint => &self.param_endpoint,
            Knob::CustomMetricsEndpoint => &self.custom_metrics_endpoint,
            Knob::TracerOffEnv => &self.tracer_off_env,
            Knob::LogEndpoint => &self.log_endpoint,
            Knob::SignalHandlingOffEnv => &self.signal_handling_off_env,
        };
        value.as_deref()
    }
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl Manifest {
    /// Read and validate the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.into(),
            source,
        })?;
        Manifest::parse(path, &text)
    }

    /// Parse manifest `text`, attributing errors to `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|err| {
            let offset = err.span().map(|s| s.start).unwrap_or(0);
            invalid(path, text, offset, err.message().trim().to_string())
        })?;
        match (&manifest.build, &manifest.binary) {
            (Some(_), Some(_)) => {
                let offset = text.find("binary").unwrap_or(0);
                Err(invalid(
                    path,
                    text,
                    offset,
                    "give either [build] or `binary`, not both".into(),
                ))
            }
            (None, None) => Err(invalid(
                path,
                text,
                0,
                "missing [build] (build from source) or `binary` (prebuilt)".into(),
            )),
            _ => Ok(manifest),
        }
    }

    /// An error about the `profile` value, pointing at its line.
    pub fn profile_error(&self, path: &Path, text: &str, message: String) -> ManifestError {
        invalid(path, text, self.profile.span().start, message)
    }
}

fn invalid(path: &Path, text: &str, offset: usize, message: String) -> ManifestError {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|nl| offset - nl).unwrap_or(offset + 1);
    ManifestError::Invalid {
        path: path.into(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each knob's key is the one `candidate.toml` accepts, and reads back its own field.
    #[test]
    fn every_knob_key_parses_and_reads_its_own_field() {
        let table: String = Knob::ALL
            .iter()
            .map(|k| format!("{} = \"{}\"\n", k.key(), k.key()))
            .collect();
        let knobs: Knobs = toml::from_str(&table).unwrap();
        for knob in Knob::ALL {
            assert_eq!(knobs.get(knob), Some(knob.key()), "{knob:?}");
        }
    }

    const GOOD: &str = r#"
name = "gofr"
profile = "gofr"
framework_module = "gofr.dev"
framework_version = "v1.56.6"

[build]
ldflags = "-s -w"

[knobs]
slow_endpoint = "/slow?ms={ms}"
"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(Path::new("candidate.toml"), GOOD).unwrap();
        assert_eq!(m.profile.get_ref(), "gofr");
        assert_eq!(m.build.unwrap().package, ".");
        assert_eq!(m.knobs.slow_endpoint.as_deref(), Some("/slow?ms={ms}"));
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = GOOD.replace("slow_endpoint", "slow_endpont");
        let err = Manifest::parse(Path::new("fixtures/x/candidate.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("fixtures/x/candidate.toml:11:"), "{err}");
        assert!(err.contains("slow_endpont"), "{err}");
    }

    #[test]
    fn build_or_binary_is_required() {
        let text = GOOD.replace("[build]\nldflags = \"-s -w\"\n", "");
        let err = Manifest::parse(Path::new("c.toml"), &text).unwrap_err().to_string();
        assert!(err.contains("missing [build]"), "{err}");
    }
}
