//! Credentials and other secret strings, kept out of `Debug` output, logs and errors.

use std::fmt;

/// A secret string. `Debug` and `Display` print `***`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value, for signing a request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An Aliyun AccessKey pair, with the STS token when the pair is temporary. The AccessKey id is
/// not secret on its own and stays visible in `Debug`, as it does in the consoles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliyunCredentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secret_values() {
        let credentials = AliyunCredentials {
            access_key_id: "LTAI-visible".into(),
            access_key_secret: Secret::new("very-secret-value"),
            security_token: Some(Secret::new("sts-token-value")),
        };
        let printed = format!("{credentials:?}");
        assert!(printed.contains("LTAI-visible"));
        assert!(!printed.contains("very-secret-value"));
        assert!(!printed.contains("sts-token-value"));
    }
}
