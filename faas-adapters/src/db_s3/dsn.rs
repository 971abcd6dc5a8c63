//! `LOWCODE_FAAS_POSTGRES_DSN` in the two forms libpq (and so the Go
//! version's pgx) accepts: a `postgres://` / `postgresql://` URL, or
//! keyword/value pairs (`host=127.0.0.1 port=5432 dbname=faas user=faas
//! password='s3 cret' sslmode=verify-full sslrootcert=/etc/ca.pem`).
//!
//! Keyword/value rules (libpq's): pairs separated by whitespace, spaces
//! allowed around `=`, a value in single quotes may hold spaces, `\'` and
//! `\\` escape inside or outside quotes. Messages name keys and positions,
//! never a value (the password must not reach a log).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::AdapterError;

/// The keys of the keyword/value form that are understood.
pub(super) const KEYWORDS: [&str; 11] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
];

/// Parses the DSN in either form.
pub(super) fn parse_dsn(raw: &str) -> Result<PgConnectOptions, AdapterError> {
    let dsn = raw.trim();
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        // sqlx's message names the problem, never the password.
        return PgConnectOptions::from_str(dsn).map_err(|e| config(format!("is not a valid PostgreSQL URL: {e}")));
    }
    if !dsn.contains('=') {
        return Err(config(
            "must be a postgres:// or postgresql:// URL, or keyword/value pairs such as \
             `host=127.0.0.1 port=5432 dbname=faas user=faas password=… sslmode=require`"
                .into(),
        ));
    }
    let mut options = PgConnectOptions::new_without_pgpass();
    for (key, value) in pairs(dsn)? {
        options = match key.as_str() {
            "host" | "hostaddr" if value.starts_with('/') => options.socket(&value),
            "host" | "hostaddr" => options.host(&value),
            "port" => options.port(
                value
                    .parse()
                    .map_err(|_| config(format!("has port '{value}', which is not a port number")))?,
            ),
            "dbname" => options.database(&value),
            "user" => options.username(&value),
            "password" => options.password(&value),
            "sslmode" => options.ssl_mode(PgSslMode::from_str(&value).map_err(|_| {
                config(format!(
                    "has sslmode '{value}' (disable, allow, prefer, require, verify-ca or verify-full)"
                ))
            })?),
            "sslrootcert" => options.ssl_root_cert(&value),
            "sslcert" => options.ssl_client_cert(&value),
            "sslkey" => options.ssl_client_key(&value),
            "application_name" => options.application_name(&value),
            other => {
                return Err(config(format!(
                    "has the unsupported key '{other}' (supported: {})",
                    KEYWORDS.join(", ")
                )))
            }
        };
    }
    Ok(options)
}

fn config(problem: String) -> AdapterError {
    AdapterError::Config(format!("LOWCODE_FAAS_POSTGRES_DSN {problem}"))
}

/// Splits the keyword/value form into pairs (libpq's `conninfo_parse`).
fn pairs(dsn: &str) -> Result<Vec<(String, String)>, AdapterError> {
    let chars: Vec<char> = dsn.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_spaces = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_spaces(&mut i);
        if i >= chars.len() {
            return Ok(out);
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if key.is_empty() {
            return Err(config(format!("has '=' without a key at character {}", start + 1)));
        }
        skip_spaces(&mut i);
        if chars.get(i) != Some(&'=') {
            return Err(config(format!("is malformed: missing '=' after key '{key}'")));
        }
        i += 1;
        skip_spaces(&mut i);
        let mut value = String::new();
        if chars.get(i) == Some(&'\'') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(config(format!(
                            "is malformed: the quoted value of '{key}' is not closed"
                        )))
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> PgConnectOptions {
        parse_dsn(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    fn error(raw: &str) -> String {
        parse_dsn(raw).unwrap_err().to_string()
    }

    #[test]
    fn keyword_value_pairs_become_connect_options() {
        let o = parsed(
            "host=db.internal port=6543 dbname=faas user=svc password=s3cret sslmode=verify-full \
             sslrootcert=/etc/ca.pem application_name=lowcode-faas",
        );
        assert_eq!(o.get_host(), "db.internal");
        assert_eq!(o.get_port(), 6543);
        assert_eq!(o.get_database(), Some("faas"));
        assert_eq!(o.get_username(), "svc");
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(o.get_application_name(), Some("lowcode-faas"));
    }

    #[test]
    fn quoting_spaces_and_escapes_follow_libpq() {
        let o = parsed("  host = 127.0.0.1   dbname='my db'  user=o\\'neil password='p w' ");
        assert_eq!(o.get_host(), "127.0.0.1");
        assert_eq!(o.get_database(), Some("my db"));
        assert_eq!(o.get_username(), "o'neil");
        let o = parsed(r"dbname='a \' b \\ c' sslmode=REQUIRE");
        assert_eq!(o.get_database(), Some(r"a ' b \ c"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Require));
        let o = parsed("host=/var/run/postgresql dbname=x");
        assert!(o.get_socket().is_some());
    }

    #[test]
    fn urls_still_work() {
        let o = parsed("postgres://u:p@127.0.0.1:5433/db?sslmode=require");
        assert_eq!((o.get_host(), o.get_port()), ("127.0.0.1", 5433));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Require));
    }

    #[test]
    fn malformed_dsns_are_clear_errors_without_the_password() {
        for (raw, want) in [
            ("host=a dbname", "missing '=' after key 'dbname'"),
            ("host=a =x", "'=' without a key"),
            (
                "host=a password='secret-value",
                "quoted value of 'password' is not closed",
            ),
            ("host=a port=abc", "port 'abc'"),
            ("host=a sslmode=sometimes", "sslmode 'sometimes'"),
            ("host=a passwd=secret-value", "unsupported key 'passwd'"),
            ("just-a-hostname", "keyword/value pairs"),
            ("mysql://u:secret-value@h/db", "keyword/value pairs"),
        ] {
            let message = error(raw);
            assert!(message.contains("LOWCODE_FAAS_POSTGRES_DSN"), "{raw}: {message}");
            assert!(message.contains(want), "{raw}: {message}");
            assert!(!message.contains("secret-value"), "{raw}: {message}");
        }
    }
}
