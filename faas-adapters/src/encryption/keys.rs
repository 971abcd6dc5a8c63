//! The keys and the sealed-value format: `lcfaas:enc:v1:<key id>:<data>`,
//! where `<data>` is base64url (no padding) of a random 24-byte nonce
//! followed by the XChaCha20-Poly1305 ciphertext and tag of the value, with
//! the env key's name as associated data (a sealed value cannot be moved to
//! another key). The key id is the first 4 bytes of SHA-256 over a domain
//! label and the key, in hex: it names the key without revealing it.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use faas_ports::{EnvMap, PortError, SEALED_ENV_PREFIX};
use sha2::{Digest, Sha256};

use crate::AdapterError;

/// The variable holding the current key.
pub const KEY_VARIABLE: &str = "LOWCODE_FAAS_ENV_ENCRYPTION_KEY";
/// The variable holding the previous keys (read only).
pub const PREVIOUS_KEYS_VARIABLE: &str = "LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS";
/// Bytes of a key.
pub const KEY_BYTES: usize = 32;
/// The format version this code writes.
const VERSION: &str = "v1";
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// The settings of env encryption at rest: the current key and the keys it
/// replaced, each base64 of 32 bytes (`openssl rand -base64 32`). Its
/// `Debug` shows key ids, never keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvEncryptionConfig {
    /// `LOWCODE_FAAS_ENV_ENCRYPTION_KEY`: seals every value written; `None`
    /// writes plain values (and sealed ones still cannot be read without
    /// their key).
    pub key: Option<String>,
    /// `LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS` (comma-separated): open
    /// values sealed before a rotation; never used to seal.
    pub previous_keys: Vec<String>,
}

impl fmt::Debug for EnvEncryptionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |raw: &str| decode_key(raw).map_or_else(|_| "<invalid>".to_owned(), |k| key_id(&k));
        f.debug_struct("EnvEncryptionConfig")
            .field("key_id", &self.key.as_deref().map(ids))
            .field(
                "previous_key_ids",
                &self.previous_keys.iter().map(|k| ids(k)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl EnvEncryptionConfig {
    /// Parses `LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS`: comma-separated, blanks ignored.
    pub fn parse_previous_keys(raw: &str) -> Vec<String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Checks every key (the messages name the variable, never the value).
    pub fn validate(&self) -> Result<(), AdapterError> {
        self.keyring().map(|_| ())
    }

    /// The keys, ready to seal and open.
    pub fn keyring(&self) -> Result<Keyring, AdapterError> {
        let current = match &self.key {
            Some(raw) => Some(EnvKey::new(decode_key(raw).map_err(|why| config(KEY_VARIABLE, &why))?)),
            None => None,
        };
        let mut previous = Vec::new();
        for (i, raw) in self.previous_keys.iter().enumerate() {
            let key = decode_key(raw)
                .map_err(|why| config(PREVIOUS_KEYS_VARIABLE, &format!("key {} of the list: {why}", i + 1)))?;
            previous.push(EnvKey::new(key));
        }
        Ok(Keyring { current, previous })
    }

    /// True when a key is set (values written are sealed).
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }
}

fn config(variable: &str, why: &str) -> AdapterError {
    AdapterError::Config(format!("{variable}: {why}"))
}

fn decode_key(raw: &str) -> Result<[u8; KEY_BYTES], String> {
    let bytes = STANDARD
        .decode(raw.trim())
        .map_err(|_| format!("expected base64 of {KEY_BYTES} bytes (openssl rand -base64 32)"))?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
        .map_err(|_| format!("expected {KEY_BYTES} bytes, found {}", bytes.len()))
}

fn key_id(key: &[u8; KEY_BYTES]) -> String {
    let digest = Sha256::new()
        .chain_update(b"lowcode-faas env encryption key id\0")
        .chain_update(key)
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// One key with its id.
#[derive(Clone)]
struct EnvKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl EnvKey {
    fn new(key: [u8; KEY_BYTES]) -> Self {
        Self {
            id: key_id(&key),
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }
}

/// The current key (seals) and the previous ones (open only). Its `Debug`
/// shows key ids.
#[derive(Clone, Default)]
pub struct Keyring {
    current: Option<EnvKey>,
    previous: Vec<EnvKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.as_ref().map(|k| &k.id))
            .field("previous", &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Sealed with a key that is neither the current nor a previous one.
    UnknownKey(String),
    /// Not a value of a known format version, or not decodable.
    Malformed(&'static str),
    /// The ciphertext does not authenticate under its key (tampered, or
    /// moved from another env key).
    Forged(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::UnknownKey(id) => write!(
                f,
                "it was encrypted with key id {id}, which is neither {KEY_VARIABLE} nor one of {PREVIOUS_KEYS_VARIABLE}"
            ),
            OpenError::Malformed(why) => write!(f, "it is not a valid encrypted value ({why})"),
            OpenError::Forged(id) => write!(
                f,
                "it does not authenticate under key id {id} (the stored value was altered)"
            ),
        }
    }
}

impl Keyring {
    /// The id of the key values are sealed with, if any.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_ref().map(|k| k.id.as_str())
    }

    /// Seals `value` of env key `name` with the current key; without one the
    /// value is returned as it is.
    pub fn seal(&self, name: &str, value: &str) -> Result<String, PortError> {
        let Some(key) = &self.current else {
            return Ok(value.to_owned());
        };
        let nonce = XNonce::try_generate().map_err(|e| PortError::internal("generating a nonce", e))?;
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|e| PortError::internal("encrypting an env value", e))?;
        let mut data = Vec::with_capacity(NONCE_BYTES + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_ENV_PREFIX}{VERSION}:{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(data)
        ))
    }

    /// Opens a value of env key `name`: a plain value is returned as it is,
    /// a sealed one decrypted with the key its id names.
    pub fn open(&self, name: &str, value: &str) -> Result<String, OpenError> {
        let Some(rest) = value.strip_prefix(SEALED_ENV_PREFIX) else {
            return Ok(value.to_owned());
        };
        let rest = rest
            .strip_prefix(VERSION)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or(OpenError::Malformed("unknown format version"))?;
        let (id, data) = rest.split_once(':').ok_or(OpenError::Malformed("no key id"))?;
        let key = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let data = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| OpenError::Malformed("not base64url"))?;
        if data.len() < NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::Malformed("too short"));
        }
        let (nonce, sealed) = data.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError::Malformed("bad nonce"))?;
        let plain = key
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Forged(id.to_owned()))?;
        String::from_utf8(plain).map_err(|_| OpenError::Malformed("not UTF-8"))
    }

    /// Every value of `env` sealed (see [`Keyring::seal`]).
    pub fn seal_env(&self, env: &EnvMap) -> Result<EnvMap, PortError> {
        if self.current.is_none() {
            return Ok(env.clone());
        }
        let sealed = env
            .iter()
            .map(|(k, v)| Ok((k.to_owned(), self.seal(k, v)?)))
            .collect::<Result<_, PortError>>()?;
        EnvMap::parse_stored(sealed)
    }

    /// Every value of `env` opened; `owner` (a collection or function id)
    /// names where it was read in the error.
    pub fn open_env(&self, env: &EnvMap, owner: &str) -> Result<EnvMap, PortError> {
        if !env.iter().any(|(_, v)| EnvMap::is_sealed_value(v)) {
            return Ok(env.clone());
        }
        let mut plain = std::collections::BTreeMap::new();
        for (k, v) in env.iter() {
            let value = self.open(k, v).map_err(|why| PortError::Internal {
                message: format!("the env value '{k}' of {owner} cannot be decrypted: {why}"),
                source: None,
            })?;
            plain.insert(k.to_owned(), value);
        }
        EnvMap::parse(plain)
            .map(|plain| plain.with_ignored_keys(env.ignored_keys()))
            .map_err(|e| PortError::Internal {
                message: format!("a decrypted env value of {owner} breaks the env rules: {e}"),
                source: None,
            })
    }
}
