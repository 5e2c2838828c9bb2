//! Test harness for the service tests (`tests/service_*.rs`): a real gateway on 127.0.0.1:0 with a
//! fresh database (a SQLite file in a temporary directory, or a fresh PostgreSQL database), three API
//! clients of three organisations, and helpers to call it, to run the real binary's `audit`
//! commands against the same database, and to tamper with the database directly.
//!
//! The service tests check what intake stores, so their gateway runs no delivery workers
//! (`[delivery] workers = 0`) and routes stay as accepted; the delivery tests pass their own
//! `[delivery]` section through [`Harness::sqlite_with`] / [`Harness::postgres_with`].
//!
//! PostgreSQL comes from `ACP_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each harness creates its own database and drops it afterwards. When PostgreSQL is unreachable the
//! PostgreSQL tests fail if `CI` is set, and otherwise print a loud SKIPPED line and pass.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use acp_gateway::config::Config;
use acp_gateway::service::startup::Server;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Connection;

/// The hospital (sender): medisch-specialist, every scope.
pub const HOSPITAL: &str = "hospital-token-0123456789abcdef0123456789";
pub const HOSPITAL_URA: &str = "11111111";
/// The GP practice (recipient of discharge letters).
pub const GP: &str = "gp-token-0123456789abcdef0123456789abcdef";
pub const GP_URA: &str = "22222222";
/// An unrelated organisation (district nursing elsewhere).
pub const STRANGER: &str = "stranger-token-0123456789abcdef01234567";
pub const STRANGER_URA: &str = "33333333";

pub const BSN: &str = "999990019";
pub const OTHER_BSN: &str = "999911120";

/// The service tests' gateway delivers nothing: routes stay as intake stored them.
pub const NO_DELIVERY: &str = "[delivery]\nworkers = 0\n";

/// Delivery tests: fast workers and short backoff, so that retries happen within a test.
pub const FAST_DELIVERY: &str = "[delivery]
workers = 2
batch = 8
poll_interval_ms = 20
lease_seconds = 30
base_delay_ms = 20
max_delay_ms = 150
max_attempts = 1000
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Harness {
    pub server: Server,
    pub http: reqwest::Client,
    pub base: String,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub db_url: String,
    pub backend: Backend,
    /// The PostgreSQL database to drop afterwards, with the admin URL.
    pg: Option<(String, String)>,
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn postgres_admin_url() -> String {
    std::env::var("ACP_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|i| *i > "postgres://".len()).unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Harness {
    /// A gateway on SQLite in a fresh temporary directory.
    pub async fn sqlite() -> Harness {
        Self::sqlite_with(NO_DELIVERY).await
    }

    /// A gateway on SQLite with extra configuration (a `[delivery]` section, channel endpoints).
    pub async fn sqlite_with(extra: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!("acp-gateway-test-{}", random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("gateway.db").display());
        Self::start(dir, url, Backend::Sqlite, None, extra).await
    }

    /// A gateway on a fresh PostgreSQL database; `None` (after a loud SKIPPED line) when PostgreSQL
    /// is unreachable outside CI.
    pub async fn postgres(test: &str) -> Option<Harness> {
        Self::postgres_with(test, NO_DELIVERY).await
    }

    /// A gateway on a fresh PostgreSQL database with extra configuration.
    pub async fn postgres_with(test: &str, extra: &str) -> Option<Harness> {
        sqlx::any::install_default_drivers();
        let admin = postgres_admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL at {admin} is unreachable and CI is set: {e}");
                }
                eprintln!("\n*** SKIPPED {test}: PostgreSQL at {admin} is unreachable ({e}); set ACP_TEST_POSTGRES_URL ***\n");
                return None;
            }
        };
        let name = format!("acp_gateway_test_{}", random_suffix());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create database");
        conn.close().await.ok();
        let dir = std::env::temp_dir().join(format!("acp-gateway-test-{}", random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = with_database(&admin, &name);
        Some(Self::start(dir, url, Backend::Postgres, Some((admin, name)), extra).await)
    }

    pub async fn new(backend: Backend, test: &str) -> Option<Harness> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres(test).await,
        }
    }

    async fn start(dir: PathBuf, db_url: String, backend: Backend, pg: Option<(String, String)>, extra: &str) -> Harness {
        let all = r#"["handovers:write", "handovers:read", "consent:write", "consent:read", "audit:read", "operator"]"#;
        let toml = format!(
            r#"data_dir = "{dir}"

[server]
listen = "127.0.0.1:0"
shutdown_grace_seconds = 5

[database]
url = "{db_url}"
max_connections = 4
sqlite_synchronous = "normal"

[[clients]]
id = "hospital-epd"
organization = {{ ura = "{HOSPITAL_URA}", name = "Ziekenhuis Test" }}
role = "medisch-specialist"
token_sha256 = "{h}"
scopes = {all}

[[clients]]
id = "gp-his"
organization = {{ ura = "{GP_URA}", name = "Huisartsenpraktijk Test" }}
role = "huisarts"
token_sha256 = "{g}"
scopes = {all}

[[clients]]
id = "stranger"
organization = {{ ura = "{STRANGER_URA}" }}
role = "wijkverpleging"
token_sha256 = "{s}"
scopes = {all}

{extra}
"#,
            dir = dir.display(),
            h = sha(HOSPITAL),
            g = sha(GP),
            s = sha(STRANGER),
        );
        let config_path = dir.join("gateway.toml");
        std::fs::write(&config_path, toml).unwrap();
        let cfg = Config::load_with_env(Some(&config_path), Vec::new()).expect("test config");
        let server = Server::start(&cfg).await.expect("server starts");
        let base = server.url();
        Harness { server, http: reqwest::Client::new(), base, dir, config_path, db_url, backend, pg }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns the status, the content type and the body parsed as JSON (or as a
    /// JSON string when it is not JSON).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, String, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, ct, body)
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let (s, _, b) = self.send(self.http.get(self.url(path)).bearer_auth(token)).await;
        (s, b)
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let (s, _, b) = self.send(self.http.post(self.url(path)).bearer_auth(token).json(body)).await;
        (s, b)
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let (s, _, b) = self.send(self.http.put(self.url(path)).bearer_auth(token).json(body)).await;
        (s, b)
    }

    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        let (s, _, b) = self.send(self.http.delete(self.url(path)).bearer_auth(token)).await;
        (s, b)
    }

    /// POST /v1/handovers, expecting 201; returns the answer.
    pub async fn hand_over(&self, body: &Value) -> Value {
        let (s, b) = self.post(HOSPITAL, "/v1/handovers", body).await;
        assert_eq!(s, 201, "{b:#}");
        b
    }

    /// Runs the real binary with `args` and this harness's config; returns exit code and stdout.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_acp-gateway"));
        cmd.args(args).arg("--config").arg(&self.config_path);
        let out = cmd.output().expect("run acp-gateway");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs SQL directly on the database, as a DBA (or an attacker) could.
    pub async fn tamper(&self, statements: &[&str]) {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.db_url).await.expect("connect for tampering");
        for s in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string())).execute(&mut conn).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        conn.close().await.ok();
    }

    /// The files spooled under the channel directories.
    pub fn spooled_files(&self) -> usize {
        fn count(p: &Path) -> usize {
            std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| if e.path().is_dir() { count(&e.path()) } else { 1 }).sum())
                .unwrap_or(0)
        }
        count(&self.dir.join("spool"))
    }

    pub async fn finish(self) {
        self.server.stop().await.expect("graceful stop");
        if let Some((admin, name)) = &self.pg {
            if let Ok(mut c) = sqlx::PgConnection::connect(admin).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut c).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A small valid uniform record; `sharing` is form item 8b (`agreed`, `unknown`, or `None`).
pub fn record(bsn: &str, sharing: Option<&str>) -> Value {
    let mut r = json!({
        "date_filled_in": "2025-06-02",
        "patient": {"bsn": bsn, "name": {"given": "Grietje", "family": "Bakker"}, "birth_date": "1941-03-09"},
        "treatment_limits": {
            "resuscitation": {"decision": "do-not-perform", "explanation": "Op eigen verzoek"},
            "hospital_admission": {"decision": "perform-with-restrictions", "restriction": "Alleen bij een heupfractuur"}
        }
    });
    if let Some(s) = sharing {
        r["sharing_consent"] = json!(s);
    }
    r
}

/// A discharge handover from the hospital to the GP practice.
pub fn discharge(record: Value) -> Value {
    json!({
        "record": record,
        "sender": {"role": "medisch-specialist", "organization": {"ura": HOSPITAL_URA, "name": "Ziekenhuis Test"},
                   "practitioner": {"agb": "01234567", "name": "Dr. A. Internist"}},
        "recipients": [{"role": "huisarts", "organization": {"ura": GP_URA, "name": "Huisartsenpraktijk Test"},
                        "endpoints": {"edifact": "GPTEST01"}}],
        "context": "discharge"
    })
}

/// Generates a SQLite and a PostgreSQL test from one scenario `async fn(&Harness)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let h = $crate::support_service::Harness::new($crate::support_service::Backend::Sqlite, stringify!($scenario)).await.unwrap();
                    super::$scenario(&h).await;
                    h.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(h) = $crate::support_service::Harness::new($crate::support_service::Backend::Postgres, concat!("postgres::", stringify!($scenario))).await else { return };
                    super::$scenario(&h).await;
                    h.finish().await;
                }
            )*
        }
    };
}
