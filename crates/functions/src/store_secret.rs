//! The store's credentials from AWS Secrets Manager, read once at init.
//!
//! On AWS the cache's AUTH token must not sit in a plain-text environment variable, where
//! anyone allowed to read the function's configuration would see it. The function is given
//! the secret's ARN instead (`SEQLESS_STORE_SECRET`) and asks the AWS Parameters and
//! Secrets Lambda Extension for its value over the execution environment's loopback
//! interface. The extension signs the Secrets Manager call with the function's role, so
//! this binary needs no AWS SDK and no request signing of its own.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::error::FunctionError;

/// The Secrets Manager secret (ARN or name) that holds the store's password. When set,
/// its password is put into `SEQLESS_STORE`'s URL at init.
pub const STORE_SECRET_ENV: &str = "SEQLESS_STORE_SECRET";
/// The extension's port, as the extension itself reads it.
pub const EXTENSION_PORT_ENV: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
/// The extension's port when [`EXTENSION_PORT_ENV`] is not set.
pub const DEFAULT_EXTENSION_PORT: u16 = 2773;
/// The session token of the function's role, which the extension takes as proof that the
/// caller runs inside the execution environment.
pub const SESSION_TOKEN_ENV: &str = "AWS_SESSION_TOKEN";

/// The extension's answer; only the secret's value is read.
#[derive(Deserialize)]
struct GetSecretValue {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

/// A secret holding the store's credentials: the JSON that CloudFormation's
/// `GenerateSecretString` writes, or the bare token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Credentials {
    /// Set for an ElastiCache RBAC user; absent for a plain AUTH token.
    #[serde(default)]
    pub username: Option<String>,
    /// The AUTH token or the user's password.
    pub password: String,
}

impl Credentials {
    /// Reads a secret's string: `{"password": ..., "username"?: ...}`, or the token itself.
    pub fn parse(secret: &str) -> Result<Self, FunctionError> {
        let trimmed = secret.trim();
        let credentials = if trimmed.starts_with('{') {
            serde_json::from_str::<Credentials>(trimmed).map_err(|e| {
                FunctionError::permanent(format!(
                    "{STORE_SECRET_ENV}: the secret is JSON but not {{\"password\": ...}}: {e}"
                ))
            })?
        } else {
            Credentials {
                username: None,
                password: trimmed.to_owned(),
            }
        };
        if credentials.password.is_empty() {
            return Err(FunctionError::permanent(format!(
                "{STORE_SECRET_ENV}: the secret's password is empty"
            )));
        }
        Ok(credentials)
    }

    /// `url` with these credentials as its user information, percent-encoded. A URL that
    /// already carries a password is refused: two sources for one password would leave it
    /// unclear which one the cache sees.
    pub fn apply(&self, url: &str) -> Result<String, FunctionError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            FunctionError::permanent("SEQLESS_STORE is not a URL (no `://`)".to_owned())
        })?;
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (user, hosts) = match rest[..authority_end].rfind('@') {
            Some(at) if rest[..at].contains(':') => {
                return Err(FunctionError::permanent(format!(
                    "SEQLESS_STORE already has a password and {STORE_SECRET_ENV} gives another; \
                     give the password in one place"
                )));
            }
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let user = self
            .username
            .as_deref()
            .map(|u| utf8_percent_encode(u, NON_ALPHANUMERIC).to_string())
            .or_else(|| user.map(str::to_owned))
            .unwrap_or_default();
        let password = utf8_percent_encode(&self.password, NON_ALPHANUMERIC);
        Ok(format!("{scheme}://{user}:{password}@{hosts}"))
    }
}

/// Asks the extension listening on `port` for the secret `secret_id`.
pub async fn fetch(
    port: u16,
    session_token: &str,
    secret_id: &str,
) -> Result<Credentials, FunctionError> {
    let url = format!(
        "http://127.0.0.1:{port}/secretsmanager/get?secretId={}",
        utf8_percent_encode(secret_id, NON_ALPHANUMERIC)
    );
    let describe = |what: String| {
        format!(
            "{STORE_SECRET_ENV}: reading secret {secret_id} through the Parameters and Secrets \
             extension on port {port}: {what}"
        )
    };
    let failed = |what: String| FunctionError::permanent(describe(what));
    // The extension is always on loopback: never send this through a configured proxy.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let response = client
        .get(&url)
        .header("X-Aws-Parameters-Secrets-Token", session_token)
        .send()
        .await
        .map_err(|e| {
            failed(format!(
                "{e} (is the AWS-Parameters-and-Secrets-Lambda-Extension layer attached?)"
            ))
        })?;
    let status = response.status();
    let body = response.text().await.map_err(|e| failed(e.to_string()))?;
    if !status.is_success() {
        let what = format!("HTTP {status}: {}", body.trim());
        return Err(if status.is_server_error() {
            FunctionError::retryable(describe(what))
        } else {
            failed(what)
        });
    }
    let value: GetSecretValue =
        serde_json::from_str(&body).map_err(|e| failed(format!("unreadable answer: {e}")))?;
    let secret = value.secret_string.ok_or_else(|| {
        failed("the secret has no SecretString (binary secrets are not read)".into())
    })?;
    Credentials::parse(&secret)
}

/// `store_url` with the password of the secret named by `secret_id`, fetched through the
/// extension at the port and with the session token the environment gives.
pub async fn store_url_with_secret(
    store_url: &str,
    secret_id: &str,
) -> Result<String, FunctionError> {
    let port = match std::env::var(EXTENSION_PORT_ENV) {
        Ok(v) => v.parse::<u16>().map_err(|_| {
            FunctionError::permanent(format!("{EXTENSION_PORT_ENV}={v:?} is not a port"))
        })?,
        Err(_) => DEFAULT_EXTENSION_PORT,
    };
    let token = std::env::var(SESSION_TOKEN_ENV).map_err(|_| {
        FunctionError::permanent(format!(
            "{STORE_SECRET_ENV} is set but {SESSION_TOKEN_ENV} is not: the secret is read \
             through the Lambda extension, which only runs on AWS Lambda"
        ))
    })?;
    fetch(port, &token, secret_id).await?.apply(store_url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn token(password: &str) -> Credentials {
        Credentials {
            username: None,
            password: password.into(),
        }
    }

    #[test]
    fn secrets_parse_as_json_or_a_bare_token() {
        let generated = r#"{"password":"Abc123"}"#;
        assert_eq!(Credentials::parse(generated).unwrap(), token("Abc123"));
        let user = Credentials::parse(r#"{"username":"app","password":"pw"}"#).unwrap();
        assert_eq!(user.username.as_deref(), Some("app"));
        assert_eq!(
            Credentials::parse("bare-token\n").unwrap(),
            token("bare-token")
        );
        let err = Credentials::parse(r#"{"pass":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("password"), "{}", err.to_string());
        assert!(Credentials::parse(" ").is_err());
    }

    #[test]
    fn the_password_goes_into_the_url_encoded() {
        let t = token("p@ss/w:rd");
        assert_eq!(
            t.apply("rediss://cache.example:6379/0").unwrap(),
            "rediss://:p%40ss%2Fw%3Ard@cache.example:6379/0"
        );
        assert_eq!(
            t.apply("rediss://app@cache.example:6379").unwrap(),
            "rediss://app:p%40ss%2Fw%3Ard@cache.example:6379"
        );
        assert_eq!(
            t.apply("redis+cluster://h1:7000,h2:7001").unwrap(),
            "redis+cluster://:p%40ss%2Fw%3Ard@h1:7000,h2:7001"
        );
        let user = Credentials {
            username: Some("svc".into()),
            password: "x".into(),
        };
        assert_eq!(user.apply("rediss://h:1").unwrap(), "rediss://svc:x@h:1");
        let err = t.apply("rediss://:old@h:1").unwrap_err();
        assert!(
            err.to_string().contains("already has a password"),
            "{}",
            err.to_string()
        );
        assert!(t.apply("cache.example:6379").is_err());
    }

    /// Serves one HTTP request on a free loopback port with `status` and `body`, and hands
    /// back the request it received.
    async fn one_shot_server(
        status: &'static str,
        body: &'static str,
    ) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        (port, served)
    }

    #[tokio::test]
    async fn the_extension_is_asked_with_the_session_token() {
        let (port, served) = one_shot_server(
            "200 OK",
            r#"{"ARN":"arn:x","Name":"cache","SecretString":"{\"password\":\"s3cret\"}"}"#,
        )
        .await;
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:cache-AbC";
        let creds = fetch(port, "session-tok", arn).await.unwrap();
        assert_eq!(creds, token("s3cret"));
        let request = served.await.unwrap().to_ascii_lowercase();
        assert!(
            request.starts_with(
                "get /secretsmanager/get?secretid=arn%3aaws%3asecretsmanager%3aus%2deast%2d1%3a1%3asecret%3acache%2dabc "
            ),
            "{request}"
        );
        assert!(
            request.contains("x-aws-parameters-secrets-token: session-tok\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn refusals_name_the_secret_and_server_trouble_is_retryable() {
        let (port, _served) =
            one_shot_server("400 Bad Request", r#"{"__type":"AccessDeniedException"}"#).await;
        let err = fetch(port, "t", "cache").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Permanent);
        assert!(
            err.to_string().contains("cache") && err.to_string().contains("AccessDenied"),
            "{}",
            err.to_string()
        );
        let (port, _served) = one_shot_server("500 Internal Server Error", "{}").await;
        assert_eq!(
            fetch(port, "t", "cache").await.unwrap_err().kind(),
            ErrorKind::Retryable
        );
        let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = unused.local_addr().unwrap().port();
        drop(unused);
        let err = fetch(port, "t", "cache").await.unwrap_err();
        assert!(err.to_string().contains("extension"), "{}", err.to_string());
    }
}
