//! Configuration: the database URL and the Mangopay credentials, read from the environment or
//! built in code, each value checked with an error naming the variable or setting.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

use crate::client::budget::RateBudget;

/// The default Mangopay environment: Mangopay's own sandbox.
pub const DEFAULT_BASE_URL: &str = "https://api.sandbox.mangopay.com";
/// The SQLite file used when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "mangopay.db";
/// How long one HTTP request to Mangopay may take, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after sending a create whose outcome is unknown the library trusts Mangopay's
/// lists to show the object if it exists, unless configured otherwise.
pub const DEFAULT_RECONCILE_AFTER: Duration = Duration::from_secs(300);
/// How long after a direct card pay-in is saved its create may still be sent, unless
/// configured otherwise.
pub const DEFAULT_CARD_PAYMENT_WINDOW: Duration = Duration::from_secs(600);

/// A configuration value that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    setting: &'static str,
    problem: String,
}

impl ConfigError {
    fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }

    /// The environment variable or builder setting at fault, such as `MANGOPAY_BASE_URL`.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    fn renamed(mut self, setting: &'static str) -> Self {
        self.setting = setting;
        self
    }
}

/// Where the tables live: PostgreSQL (production) or a SQLite file (the embedded default).
///
/// Parsed from `postgres://…` / `postgresql://…` (PostgreSQL), `sqlite://path`, `sqlite:path` or
/// a plain file path (SQLite). `Display` and `Debug` hide a PostgreSQL password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A PostgreSQL connection URL, as libpq accepts it.
    Postgres(String),
    /// The path of a SQLite database file (created if missing).
    Sqlite(String),
}

impl DatabaseUrl {
    /// `DATABASE_URL`, or [`DEFAULT_DATABASE_URL`] when it is unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env_var)
    }

    fn from_lookup(env: Lookup<'_>) -> Result<Self, ConfigError> {
        match env("DATABASE_URL")? {
            Some(v) => v
                .parse()
                .map_err(|e: ConfigError| e.renamed("DATABASE_URL")),
            None => DEFAULT_DATABASE_URL.parse(),
        }
    }

    /// The URL or path with any password replaced by `***`, safe to print.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
            DatabaseUrl::Postgres(url) => match Url::parse(url) {
                Ok(mut u) if u.password().is_some() => {
                    let _ = u.set_password(Some("***"));
                    u.to_string()
                }
                Ok(u) => u.to_string(),
                Err(_) => "postgres://<unparsable url>".to_owned(),
            },
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let err = |p: String| ConfigError::new("database_url", p);
        if s.is_empty() {
            return Err(err("is empty".into()));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let url = Url::parse(s).map_err(|e| err(format!("`{s}` is not a valid URL: {e}")))?;
            if url.host_str().is_none_or(str::is_empty)
                && !url.query().is_some_and(|q| q.contains("host="))
            {
                return Err(err("a PostgreSQL URL needs a host".into()));
            }
            return Ok(DatabaseUrl::Postgres(s.to_owned()));
        }
        let path = if let Some(rest) = lower.strip_prefix("sqlite://") {
            &s[s.len() - rest.len()..]
        } else if let Some(rest) = lower.strip_prefix("sqlite:") {
            &s[s.len() - rest.len()..]
        } else if let Some((scheme, _)) = s.split_once("://") {
            return Err(err(format!(
                "unsupported scheme `{scheme}://`; use postgres://, postgresql://, sqlite:// or a file path"
            )));
        } else {
            s
        };
        if path.is_empty() {
            return Err(err("the SQLite path is empty".into()));
        }
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err(err(
                "an in-memory SQLite database is private to one connection and cannot back a \
                 connection pool; use a file path"
                    .into(),
            ));
        }
        Ok(DatabaseUrl::Sqlite(path.to_owned()))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// How to reach Mangopay: credentials, environment, timeouts and logging.
///
/// `Debug` never shows the API key.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    client_id: String,
    api_key: SecretString,
    base_url: Url,
    debug: bool,
    debug_personal_data: bool,
    uk_tenant: bool,
    timeout: Duration,
    reconcile_after: Duration,
    card_payment_window: Duration,
    rate_budget: RateBudget,
}

impl ClientConfig {
    /// Starts a configuration from a client id and API key; the rest takes its defaults.
    pub fn builder(
        client_id: impl Into<String>,
        api_key: impl Into<String>,
    ) -> ClientConfigBuilder {
        ClientConfigBuilder {
            client_id: client_id.into(),
            api_key: SecretString::from(api_key.into()),
            base_url: DEFAULT_BASE_URL.to_owned(),
            debug: false,
            debug_personal_data: false,
            uk_tenant: false,
            timeout: DEFAULT_TIMEOUT,
            reconcile_after: DEFAULT_RECONCILE_AFTER,
            card_payment_window: DEFAULT_CARD_PAYMENT_WINDOW,
            rate_budget: RateBudget::mangopay(),
        }
    }

    /// Reads `MANGOPAY_CLIENT_ID`, `MANGOPAY_API_KEY` (or `MANGOPAY_PASSPHRASE`, the name
    /// django-mangopay used), `MANGOPAY_BASE_URL`, `MANGOPAY_DEBUG`,
    /// `MANGOPAY_DEBUG_PERSONAL_DATA`, `MANGOPAY_UK_HEADER_FLAG`, `MANGOPAY_TIMEOUT_SECS`,
    /// `MANGOPAY_RECONCILE_AFTER_SECS`, `MANGOPAY_CARD_PAYMENT_WINDOW_SECS` and
    /// `MANGOPAY_RATE_BUDGET` (`seconds:calls` windows separated by commas, or `off`; see
    /// [`RateBudget::parse`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env_var)
    }

    fn from_lookup(env: Lookup<'_>) -> Result<Self, ConfigError> {
        let client_id = env("MANGOPAY_CLIENT_ID")?
            .ok_or_else(|| ConfigError::new("MANGOPAY_CLIENT_ID", "is not set"))?;
        let (key_var, api_key) = match env("MANGOPAY_API_KEY")? {
            Some(k) => ("MANGOPAY_API_KEY", k),
            None => (
                "MANGOPAY_PASSPHRASE",
                env("MANGOPAY_PASSPHRASE")?.ok_or_else(|| {
                    ConfigError::new("MANGOPAY_API_KEY", "is not set (nor MANGOPAY_PASSPHRASE)")
                })?,
            ),
        };
        let mut builder = ClientConfig::builder(client_id, api_key);
        if let Some(url) = env("MANGOPAY_BASE_URL")? {
            builder = builder.base_url(url);
        }
        if let Some(v) = env("MANGOPAY_DEBUG")? {
            builder = builder.debug(parse_bool("MANGOPAY_DEBUG", &v)?);
        }
        if let Some(v) = env("MANGOPAY_DEBUG_PERSONAL_DATA")? {
            builder = builder.debug_personal_data(parse_bool("MANGOPAY_DEBUG_PERSONAL_DATA", &v)?);
        }
        if let Some(v) = env("MANGOPAY_UK_HEADER_FLAG")? {
            builder = builder.uk_header_flag(parse_bool("MANGOPAY_UK_HEADER_FLAG", &v)?);
        }
        if let Some(v) = env("MANGOPAY_TIMEOUT_SECS")? {
            let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                ConfigError::new(
                    "MANGOPAY_TIMEOUT_SECS",
                    format!("`{v}` is not a positive number of seconds"),
                )
            })?;
            builder = builder.timeout(Duration::from_secs(secs));
        }
        if let Some(v) = env("MANGOPAY_RECONCILE_AFTER_SECS")? {
            let secs: u64 = v.parse().ok().ok_or_else(|| {
                ConfigError::new(
                    "MANGOPAY_RECONCILE_AFTER_SECS",
                    format!("`{v}` is not a number of seconds"),
                )
            })?;
            builder = builder.reconcile_after(Duration::from_secs(secs));
        }
        if let Some(v) = env("MANGOPAY_CARD_PAYMENT_WINDOW_SECS")? {
            let secs: u64 = v.parse().ok().ok_or_else(|| {
                ConfigError::new(
                    "MANGOPAY_CARD_PAYMENT_WINDOW_SECS",
                    format!("`{v}` is not a number of seconds"),
                )
            })?;
            builder = builder.card_payment_window(Duration::from_secs(secs));
        }
        if let Some(v) = env("MANGOPAY_RATE_BUDGET")? {
            let budget = RateBudget::parse(&v)
                .map_err(|e| ConfigError::new("MANGOPAY_RATE_BUDGET", format!("`{v}`: {e}")))?;
            builder = builder.rate_budget(budget);
        }
        builder.build().map_err(|e| {
            let var = match e.setting {
                "client_id" => "MANGOPAY_CLIENT_ID",
                "api_key" => key_var,
                "base_url" => "MANGOPAY_BASE_URL",
                "reconcile_after" => "MANGOPAY_RECONCILE_AFTER_SECS",
                "card_payment_window" => "MANGOPAY_CARD_PAYMENT_WINDOW_SECS",
                other => other,
            };
            e.renamed(var)
        })
    }

    /// The Mangopay client id (it goes into every API path).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The API key. Handle with care: never log it.
    pub fn api_key(&self) -> &SecretString {
        &self.api_key
    }

    /// The API host, such as `https://api.mangopay.com`, without `/v2.01`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Whether requests and responses are logged (with secrets redacted) through `tracing`.
    pub fn debug(&self) -> bool {
        self.debug
    }

    /// Whether those logs show personal data (names, e-mails, birthdays, addresses, phone
    /// numbers, bank account details, card aliases). When false, the default, each such value
    /// is logged as `[masked]`. Secrets and card data are redacted either way.
    pub fn debug_personal_data(&self) -> bool {
        self.debug_personal_data
    }

    /// Whether every request carries `x-tenant-id: uk` (platforms contracted with Mangopay UK).
    pub fn uk_header_flag(&self) -> bool {
        self.uk_tenant
    }

    /// The timeout of one HTTP request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long after the last send of a create whose outcome is unknown the library lists
    /// the resource to find it by its tag, and concludes from an empty search that nothing
    /// was created: the time Mangopay may still be processing the request and its lists
    /// catching up.
    pub fn reconcile_after(&self) -> Duration {
        self.reconcile_after
    }

    /// How long after a direct card pay-in is saved its create may still be sent (default 10
    /// minutes): the cardholder is at the checkout, and their browser's details
    /// (`BrowserInfo`) are for this session. Past it the create is never sent again, neither
    /// its key resent nor a new key after Mangopay proved nothing was created: the row is
    /// `failed` ([`Error::SendWindowPassed`](crate::Error::SendWindowPassed)), and a card is
    /// never charged hours after its holder left (a worker backlog, a retry after an outage).
    pub fn card_payment_window(&self) -> Duration {
        self.card_payment_window
    }

    /// The calls the client allows itself (default: Mangopay's published budget, 2,300 calls
    /// in 15 minutes, 4,500 in 30, 8,800 in an hour and 105,600 in a day). Every clone of a
    /// client shares one count; see [`crate::client::budget`].
    pub fn rate_budget(&self) -> &RateBudget {
        &self.rate_budget
    }
}

/// Builds a [`ClientConfig`] in code; `build` checks every value.
#[derive(Debug)]
pub struct ClientConfigBuilder {
    client_id: String,
    api_key: SecretString,
    base_url: String,
    debug: bool,
    debug_personal_data: bool,
    uk_tenant: bool,
    timeout: Duration,
    reconcile_after: Duration,
    card_payment_window: Duration,
    rate_budget: RateBudget,
}

impl ClientConfigBuilder {
    /// The API host (default [`DEFAULT_BASE_URL`]). Must be `https://`, except on a loopback
    /// host (`127.0.0.1`, `::1`, `localhost`) where `http://` is accepted for the sandbox.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Log requests and responses through `tracing` (secrets redacted, personal data masked
    /// unless [`debug_personal_data`](Self::debug_personal_data) is on).
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// Show personal data (names, e-mails, birthdays, addresses, phone numbers, bank account
    /// details, card aliases) in the `debug` logs instead of `[masked]` (default off). Secrets
    /// and card data stay redacted. Has no effect without [`debug`](Self::debug).
    pub fn debug_personal_data(mut self, on: bool) -> Self {
        self.debug_personal_data = on;
        self
    }

    /// Send `x-tenant-id: uk` on every request.
    pub fn uk_header_flag(mut self, on: bool) -> Self {
        self.uk_tenant = on;
        self
    }

    /// The timeout of one HTTP request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long after the last send of a create whose outcome is unknown the library lists
    /// the resource to settle it (default 5 minutes). See [`ClientConfig::reconcile_after`].
    pub fn reconcile_after(mut self, after: Duration) -> Self {
        self.reconcile_after = after;
        self
    }

    /// How long after a direct card pay-in is saved its create may still be sent (default 10
    /// minutes, at most 23 hours). See [`ClientConfig::card_payment_window`].
    pub fn card_payment_window(mut self, window: Duration) -> Self {
        self.card_payment_window = window;
        self
    }

    /// The calls the client allows itself. See [`ClientConfig::rate_budget`].
    pub fn rate_budget(mut self, budget: RateBudget) -> Self {
        self.rate_budget = budget;
        self
    }

    /// Checks every value and returns the configuration.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        let id = self.client_id.trim();
        if id.is_empty() {
            return Err(ConfigError::new("client_id", "is empty"));
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        {
            return Err(ConfigError::new(
                "client_id",
                "may only contain ASCII letters, digits and `-_.~` (it is part of every API path)",
            ));
        }
        if self.api_key.expose_secret().trim().is_empty() {
            return Err(ConfigError::new("api_key", "is empty"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be longer than zero"));
        }
        if self.reconcile_after < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "reconcile_after",
                "must be at least a second: searching before Mangopay has finished a request \
                 could conclude that nothing was created while it is being created",
            ));
        }
        if self.card_payment_window < Duration::from_secs(1)
            || self.card_payment_window > Duration::from_secs(23 * 3600)
        {
            return Err(ConfigError::new(
                "card_payment_window",
                "must be a second to 23 hours (Mangopay keeps an idempotency key for 24 hours)",
            ));
        }
        Ok(ClientConfig {
            client_id: id.to_owned(),
            api_key: self.api_key,
            base_url: parse_base_url(&self.base_url)?,
            debug: self.debug,
            debug_personal_data: self.debug_personal_data,
            uk_tenant: self.uk_tenant,
            timeout: self.timeout,
            reconcile_after: self.reconcile_after,
            card_payment_window: self.card_payment_window,
            rate_budget: self.rate_budget,
        })
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ConfigError> {
    let err = |p: String| ConfigError::new("base_url", p);
    let mut url =
        Url::parse(raw.trim()).map_err(|e| err(format!("`{raw}` is not a valid URL: {e}")))?;
    let host = url
        .host()
        .ok_or_else(|| err(format!("`{raw}` has no host")))?;
    let loopback = match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(err(format!(
                "`{raw}` uses plain http; Mangopay must be reached over https (http is only accepted on a loopback host)"
            )));
        }
        other => return Err(err(format!("unsupported scheme `{other}`; use https"))),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err(format!("`{raw}` must not have a query or fragment")));
    }
    // Accept "https://api.mangopay.com/", ".../v2.01" and ".../v2.01/" alike.
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.to_ascii_lowercase().ends_with("/v2.01") {
        path[..path.len() - "/v2.01".len()].to_owned()
    } else {
        path
    };
    url.set_path(&path);
    Ok(url)
}

/// The whole configuration of an application, worker or CLI: where the tables are and how to
/// reach Mangopay.
#[derive(Clone, Debug)]
pub struct Config {
    database_url: DatabaseUrl,
    mangopay: ClientConfig,
}

impl Config {
    /// Reads [`DatabaseUrl::from_env`] and [`ClientConfig::from_env`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            database_url: DatabaseUrl::from_env()?,
            mangopay: ClientConfig::from_env()?,
        })
    }

    /// A configuration from values built in code.
    pub fn new(database_url: DatabaseUrl, mangopay: ClientConfig) -> Self {
        Config {
            database_url,
            mangopay,
        }
    }

    /// Where the tables are.
    pub fn database_url(&self) -> &DatabaseUrl {
        &self.database_url
    }

    /// How to reach Mangopay.
    pub fn mangopay(&self) -> &ClientConfig {
        &self.mangopay
    }
}

/// Reads one variable: the process environment, or a map in tests.
type Lookup<'a> = &'a dyn Fn(&'static str) -> Result<Option<String>, ConfigError>;

/// An environment variable; unset and empty are both `None`, non-UTF-8 is an error.
fn env_var(name: &'static str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(name, "is not valid UTF-8")),
    }
}

fn parse_bool(setting: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            setting,
            format!("`{v}` is not a boolean (use 1/0, true/false, yes/no, on/off)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_pick_the_backend_from_the_scheme() {
        let pg: DatabaseUrl = "postgres://u:pw@db.example:5432/app".parse().unwrap();
        assert!(matches!(pg, DatabaseUrl::Postgres(_)));
        assert_eq!(pg.to_string(), "postgres://u:***@db.example:5432/app");
        assert!(!format!("{pg:?}").contains("pw"));
        assert!(matches!(
            "postgresql://h/db".parse(),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert_eq!(
            "sqlite://data/m.db".parse(),
            Ok(DatabaseUrl::Sqlite("data/m.db".into()))
        );
        assert_eq!(
            "sqlite:m.db".parse(),
            Ok(DatabaseUrl::Sqlite("m.db".into()))
        );
        assert_eq!(
            "/tmp/x.db".parse(),
            Ok(DatabaseUrl::Sqlite("/tmp/x.db".into()))
        );
        for bad in ["", "mysql://h/db", "sqlite://", ":memory:", "postgres://"] {
            let e = bad.parse::<DatabaseUrl>().unwrap_err();
            assert_eq!(e.setting(), "database_url", "{bad}");
        }
    }

    #[test]
    fn base_url_must_be_https_unless_loopback() {
        let ok = |u: &str| ClientConfig::builder("c", "k").base_url(u).build().unwrap();
        assert_eq!(
            ok("https://api.mangopay.com/v2.01/").base_url().as_str(),
            "https://api.mangopay.com/"
        );
        assert_eq!(
            ok("http://127.0.0.1:8080").base_url().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert!(ok("http://[::1]:1").base_url().host().is_some());
        assert!(ok("http://localhost:9").base_url().host().is_some());
        for bad in [
            "http://api.mangopay.com",
            "ftp://x",
            "not a url",
            "https://x/?a=1",
        ] {
            let e = ClientConfig::builder("c", "k")
                .base_url(bad)
                .build()
                .unwrap_err();
            assert_eq!(e.setting(), "base_url", "{bad}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let c = ClientConfig::builder("client", "super-secret-key")
            .build()
            .unwrap();
        let shown = format!(
            "{c:?} {:?}",
            Config::new("x.db".parse().unwrap(), c.clone())
        );
        assert!(!shown.contains("super-secret-key"), "{shown}");
        assert!(shown.contains("client"));
    }

    fn lookup(
        vars: &[(&'static str, &str)],
    ) -> impl Fn(&'static str) -> Result<Option<String>, ConfigError> {
        let vars: Vec<(&'static str, String)> =
            vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        move |name| {
            Ok(vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone()))
        }
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let cfg = |vars: &[(&'static str, &str)]| ClientConfig::from_lookup(&lookup(vars));
        let base = [
            ("MANGOPAY_CLIENT_ID", "client"),
            ("MANGOPAY_API_KEY", "key"),
        ];
        let ok = cfg(&base).unwrap();
        assert_eq!(ok.base_url().as_str(), "https://api.sandbox.mangopay.com/");
        assert_eq!(ok.card_payment_window(), DEFAULT_CARD_PAYMENT_WINDOW);
        let window = cfg(&[
            base[0],
            base[1],
            ("MANGOPAY_CARD_PAYMENT_WINDOW_SECS", "120"),
        ]);
        assert_eq!(
            window.unwrap().card_payment_window(),
            Duration::from_secs(120)
        );
        assert!(!ok.debug() && !ok.uk_header_flag() && !ok.debug_personal_data());
        assert_eq!(ok.rate_budget(), &RateBudget::mangopay());
        let budget = cfg(&[base[0], base[1], ("MANGOPAY_RATE_BUDGET", "60:100")]).unwrap();
        assert_eq!(budget.rate_budget().windows()[0].limit, 100);
        let off = cfg(&[base[0], base[1], ("MANGOPAY_RATE_BUDGET", "off")]).unwrap();
        assert!(off.rate_budget().windows().is_empty());
        let passphrase = cfg(&[("MANGOPAY_CLIENT_ID", "c"), ("MANGOPAY_PASSPHRASE", "p")]).unwrap();
        assert_eq!(passphrase.api_key().expose_secret(), "p");
        assert_eq!(
            cfg(&[("MANGOPAY_API_KEY", "k")]).unwrap_err().setting(),
            "MANGOPAY_CLIENT_ID"
        );
        assert_eq!(
            cfg(&[("MANGOPAY_CLIENT_ID", "c")]).unwrap_err().setting(),
            "MANGOPAY_API_KEY"
        );
        for (var, value) in [
            ("MANGOPAY_BASE_URL", "http://api.mangopay.com"),
            ("MANGOPAY_DEBUG", "perhaps"),
            ("MANGOPAY_DEBUG_PERSONAL_DATA", "sometimes"),
            ("MANGOPAY_UK_HEADER_FLAG", "2"),
            ("MANGOPAY_TIMEOUT_SECS", "0"),
            ("MANGOPAY_CARD_PAYMENT_WINDOW_SECS", "0"),
            ("MANGOPAY_CARD_PAYMENT_WINDOW_SECS", "90000"),
            ("MANGOPAY_CARD_PAYMENT_WINDOW_SECS", "soon"),
            ("MANGOPAY_RATE_BUDGET", "900"),
            ("MANGOPAY_RATE_BUDGET", "900:0"),
            ("MANGOPAY_CLIENT_ID", "has space"),
        ] {
            let mut vars = base.to_vec();
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            assert_eq!(cfg(&vars).unwrap_err().setting(), var, "{var}={value}");
        }
        let on = cfg(&[
            base[0],
            base[1],
            ("MANGOPAY_DEBUG", "1"),
            ("MANGOPAY_DEBUG_PERSONAL_DATA", "yes"),
            ("MANGOPAY_UK_HEADER_FLAG", "true"),
        ])
        .unwrap();
        assert!(on.debug() && on.debug_personal_data() && on.uk_header_flag());
        let e = cfg(&[base[0], base[1], ("MANGOPAY_DEBUG_PERSONAL_DATA", "2")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("MANGOPAY_DEBUG_PERSONAL_DATA: `2` is not a boolean"),
            "{e}"
        );
        let off = cfg(&[base[0], base[1], ("MANGOPAY_DEBUG_PERSONAL_DATA", "off")]).unwrap();
        assert!(!off.debug_personal_data());
        let db = |vars: &[(&'static str, &str)]| DatabaseUrl::from_lookup(&lookup(vars));
        assert_eq!(db(&[]).unwrap(), DatabaseUrl::Sqlite("mangopay.db".into()));
        assert_eq!(
            db(&[("DATABASE_URL", "redis://x")]).unwrap_err().setting(),
            "DATABASE_URL"
        );
    }

    #[test]
    fn builder_rejects_bad_values_by_name() {
        let e = |b: ClientConfigBuilder| b.build().unwrap_err().setting();
        assert_eq!(e(ClientConfig::builder("", "k")), "client_id");
        assert_eq!(e(ClientConfig::builder("a/b", "k")), "client_id");
        assert_eq!(e(ClientConfig::builder("c", " ")), "api_key");
        assert_eq!(
            e(ClientConfig::builder("c", "k").timeout(Duration::ZERO)),
            "timeout"
        );
        assert_eq!(
            parse_bool("MANGOPAY_DEBUG", "maybe").unwrap_err().setting(),
            "MANGOPAY_DEBUG"
        );
        assert!(parse_bool("X", "On").unwrap());
    }
}
