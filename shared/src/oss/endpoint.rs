//! OSS endpoints: parsing, validation and the request URLs built from them.
//!
//! OSS serves a bucket at `<bucket>.<endpoint>` (virtual-hosted addressing) or at a custom domain
//! bound to the bucket with a CNAME record. OSS rejects path-style requests
//! (`SecondLevelDomainForbidden`), so no URL built here ever carries the bucket in the path.

use std::fmt;

use thiserror::Error;
use url::Url;

use super::signer::uri_encode;

/// The domain shared by every OSS endpoint that Aliyun operates.
const OSS_DOMAIN_SUFFIX: &str = ".aliyuncs.com";

/// The kind of endpoint a value names, which decides how request hosts are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointKind {
    /// `oss-<region>.aliyuncs.com`, reachable from the internet.
    Standard { region: String },
    /// `oss-<region>-internal.aliyuncs.com`, reachable only from Aliyun's network in that region.
    Internal { region: String },
    /// `oss-accelerate.aliyuncs.com` (transfer acceleration, global).
    Accelerate,
    /// `oss-accelerate-overseas.aliyuncs.com` (transfer acceleration outside mainland China).
    AccelerateOverseas,
    /// A domain bound to one bucket with a CNAME record. Requests go to the domain itself.
    CustomDomain,
}

/// How requests reach the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Plain HTTP, accepted only when the caller allows it (tests against local servers).
    Http,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// How to read an endpoint value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointOptions {
    /// The value is a custom domain bound to the bucket, not an Aliyun OSS endpoint.
    pub custom_domain: bool,
    /// Accept `http://` values. Only tests against servers on 127.0.0.1 set this.
    pub allow_http: bool,
}

/// A validated OSS endpoint: scheme, host (lowercase, with an optional port) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssEndpoint {
    scheme: Scheme,
    /// The host without the port, lowercase.
    host: String,
    port: Option<u16>,
    kind: EndpointKind,
}

/// Why an endpoint value was rejected. Every message names the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EndpointError {
    #[error("OSS endpoint is empty: set it to oss-<region>.aliyuncs.com or a custom domain")]
    Empty,
    #[error("OSS endpoint {value} uses plain http: use https, or allow http for local tests only")]
    HttpNotAllowed { value: String },
    #[error("OSS endpoint {value} has an unsupported scheme: use https:// or no scheme")]
    UnsupportedScheme { value: String },
    #[error("OSS endpoint {value} is not a valid host name: {reason}")]
    InvalidHost { value: String, reason: String },
    #[error(
        "OSS endpoint {value} contains {part}: give only the host, such as oss-cn-hangzhou.aliyuncs.com"
    )]
    ExtraParts { value: String, part: &'static str },
    #[error(
        "OSS endpoint {value} contains the bucket name {bucket}: set the endpoint to {endpoint} and the bucket separately"
    )]
    ContainsBucket {
        value: String,
        bucket: String,
        endpoint: String,
    },
    #[error(
        "OSS endpoint {value} is not an Aliyun OSS endpoint: use oss-<region>.aliyuncs.com, oss-<region>-internal.aliyuncs.com or oss-accelerate[-overseas].aliyuncs.com, or mark it as a custom domain"
    )]
    NotOssEndpoint { value: String },
    #[error(
        "OSS endpoint {value} is an Aliyun endpoint, not a custom domain: turn custom-domain mode off"
    )]
    AliyunHostAsCustomDomain { value: String },
    #[error(
        "OSS endpoint {value} is in region {endpoint_region} but the configured region is {region}"
    )]
    RegionMismatch {
        value: String,
        endpoint_region: String,
        region: String,
    },
}

impl OssEndpoint {
    /// Parses an endpoint given as a host (`oss-cn-hangzhou.aliyuncs.com`) or as an
    /// `https://` URL without path, query or user info. A single trailing `/` is accepted.
    ///
    /// # Errors
    /// Returns an [`EndpointError`] naming the value when it is empty, uses `http://` without
    /// `allow_http`, carries a path, query, fragment or user info, contains a bucket name, or is
    /// neither an OSS endpoint nor (in custom-domain mode) a plain domain.
    pub fn parse(value: &str, options: EndpointOptions) -> Result<Self, EndpointError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(EndpointError::Empty);
        }
        let owned = || value.to_string();

        let lowercase = value.to_ascii_lowercase();
        let (scheme, rest) = if lowercase.starts_with("https://") {
            (Scheme::Https, &value["https://".len()..])
        } else if lowercase.starts_with("http://") {
            if !options.allow_http {
                return Err(EndpointError::HttpNotAllowed { value: owned() });
            }
            (Scheme::Http, &value["http://".len()..])
        } else if value.contains("://") {
            return Err(EndpointError::UnsupportedScheme { value: owned() });
        } else {
            (Scheme::Https, value)
        };

        // The url crate quietly drops an empty query or fragment and normalises paths, so
        // the characters that start those parts are checked on the raw text first.
        for (marker, part) in [('@', "user info"), ('?', "a query"), ('#', "a fragment")] {
            if rest.contains(marker) {
                return Err(EndpointError::ExtraParts {
                    value: owned(),
                    part,
                });
            }
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('\\') {
            return Err(EndpointError::ExtraParts {
                value: owned(),
                part: "a path",
            });
        }

        let url = Url::parse(&format!("{}://{authority}", scheme.as_str())).map_err(|error| {
            EndpointError::InvalidHost {
                value: owned(),
                reason: error.to_string(),
            }
        })?;
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_ascii_lowercase(),
            _ => {
                return Err(EndpointError::InvalidHost {
                    value: owned(),
                    reason: "the host is missing".into(),
                });
            }
        };
        let port = url.port();

        let kind = classify_host(&host, value, options.custom_domain)?;
        Ok(Self {
            scheme,
            host,
            port,
            kind,
        })
    }

    pub fn kind(&self) -> &EndpointKind {
        &self.kind
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Returns the endpoint host without the port, lowercase.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Returns the region that the endpoint host names, for standard and internal endpoints.
    pub fn region(&self) -> Option<&str> {
        match &self.kind {
            EndpointKind::Standard { region } | EndpointKind::Internal { region } => Some(region),
            _ => None,
        }
    }

    /// Checks that a standard or internal endpoint is in `region`. Accelerate endpoints and
    /// custom domains name no region, so any region passes.
    ///
    /// # Errors
    /// Returns [`EndpointError::RegionMismatch`] when the regions differ.
    pub fn check_region(&self, region: &str) -> Result<(), EndpointError> {
        match self.region() {
            Some(endpoint_region) if endpoint_region != region => {
                Err(EndpointError::RegionMismatch {
                    value: self.to_string(),
                    endpoint_region: endpoint_region.to_string(),
                    region: region.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Returns the host (without port) that requests for `bucket` go to:
    /// `<bucket>.<endpoint>`, or the custom domain itself.
    pub fn request_host(&self, bucket: &str) -> String {
        match self.kind {
            EndpointKind::CustomDomain => self.host.clone(),
            _ => format!("{bucket}.{}", self.host),
        }
    }

    /// Returns the URL of a bucket-level request such as ListMultipartUploads.
    pub fn bucket_url(
        &self,
        bucket: &str,
        query: &[(String, String)],
    ) -> Result<Url, url::ParseError> {
        self.build_url(bucket, "", query)
    }

    /// Returns the URL of an object: `https://<bucket>.<endpoint>/<key>` or
    /// `https://<domain>/<key>`, with the key and query percent-encoded as RFC 3986 requires.
    pub fn object_url(
        &self,
        bucket: &str,
        key: &str,
        query: &[(String, String)],
    ) -> Result<Url, url::ParseError> {
        let path: Vec<String> = key.split('/').map(uri_encode).collect();
        self.build_url(bucket, &path.join("/"), query)
    }

    fn build_url(
        &self,
        bucket: &str,
        encoded_path: &str,
        query: &[(String, String)],
    ) -> Result<Url, url::ParseError> {
        let mut text = format!("{}://{}", self.scheme.as_str(), self.request_host(bucket));
        if let Some(port) = self.port {
            text.push_str(&format!(":{port}"));
        }
        text.push('/');
        text.push_str(encoded_path);
        if !query.is_empty() {
            let pairs: Vec<String> = query
                .iter()
                .map(|(name, value)| {
                    if value.is_empty() {
                        uri_encode(name)
                    } else {
                        format!("{}={}", uri_encode(name), uri_encode(value))
                    }
                })
                .collect();
            text.push('?');
            text.push_str(&pairs.join("&"));
        }
        Url::parse(&text)
    }
}

impl fmt::Display for OssEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Decides the endpoint kind from its lowercase host.
fn classify_host(
    host: &str,
    value: &str,
    custom_domain: bool,
) -> Result<EndpointKind, EndpointError> {
    let owned = || value.to_string();
    let Some(name) = host.strip_suffix(OSS_DOMAIN_SUFFIX) else {
        return if custom_domain {
            Ok(EndpointKind::CustomDomain)
        } else {
            Err(EndpointError::NotOssEndpoint { value: owned() })
        };
    };
    if custom_domain {
        return Err(EndpointError::AliyunHostAsCustomDomain { value: owned() });
    }

    // `mybucket.oss-cn-hangzhou.aliyuncs.com` is a bucket's own host, not an endpoint.
    if let Some((first, endpoint_label)) = name.split_once('.') {
        if is_oss_label(endpoint_label) {
            return Err(EndpointError::ContainsBucket {
                value: owned(),
                bucket: first.to_string(),
                endpoint: format!("{endpoint_label}{OSS_DOMAIN_SUFFIX}"),
            });
        }
        return Err(EndpointError::NotOssEndpoint { value: owned() });
    }

    match name {
        "oss-accelerate" => return Ok(EndpointKind::Accelerate),
        "oss-accelerate-overseas" => return Ok(EndpointKind::AccelerateOverseas),
        _ => {}
    }
    let Some(region_part) = name.strip_prefix("oss-") else {
        return Err(EndpointError::NotOssEndpoint { value: owned() });
    };
    let (region, internal) = match region_part.strip_suffix("-internal") {
        Some(region) => (region, true),
        None => (region_part, false),
    };
    if !is_region_id(region) {
        return Err(EndpointError::NotOssEndpoint { value: owned() });
    }
    let region = region.to_string();
    Ok(if internal {
        EndpointKind::Internal { region }
    } else {
        EndpointKind::Standard { region }
    })
}

/// True for a label that names an OSS endpoint (`oss-cn-hangzhou`, `oss-accelerate`, ...).
fn is_oss_label(label: &str) -> bool {
    label.strip_prefix("oss-").is_some_and(is_region_id)
}

/// True for a region id such as `cn-hangzhou` or `ap-southeast-1`.
pub(crate) fn is_region_id(region: &str) -> bool {
    !region.is_empty()
        && !region.starts_with('-')
        && !region.ends_with('-')
        && region
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
