//! Helpers shared by the fake OSS tests: a V4-signed request builder over reqwest (using the
//! project signer) and readers for OSS error replies.

#![allow(dead_code)]

use backup_bridge::oss::signer::{self, SignableRequest};
use chrono::{DateTime, Utc};
use testkit::fake_oss::{FakeOss, FakeOssConfig};

pub const BUCKET: &str = "backup-bucket";

pub async fn start() -> FakeOss {
    FakeOss::start(FakeOssConfig::with_buckets(&[BUCKET]))
        .await
        .expect("fake OSS starts")
}

/// A request to the fake, signed with V4 when sent. Every field can be changed to build a
/// request that the fake must reject.
pub struct SignedRequest<'a> {
    oss: &'a FakeOss,
    pub method: String,
    pub bucket: String,
    pub key: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A streamed body sent in place of `body`, for objects too large to build in memory.
    pub stream: Option<reqwest::Body>,
    pub access_key_id: String,
    pub secret: String,
    pub region: String,
    pub time: DateTime<Utc>,
    /// `host:port` to send to; by default `<bucket>.<endpoint>:<port>`.
    pub authority: String,
    /// Puts the bucket in the path, as path-style clients do.
    pub path_style: bool,
    pub sign: bool,
    /// Sends the `x-oss-date` header; the signature covers the time either way.
    pub send_date: bool,
}

pub fn request<'a>(oss: &'a FakeOss, method: &str, key: &str) -> SignedRequest<'a> {
    let config = oss.config();
    SignedRequest {
        oss,
        method: method.to_string(),
        bucket: BUCKET.to_string(),
        key: key.to_string(),
        query: Vec::new(),
        headers: vec![(
            "x-oss-content-sha256".to_string(),
            signer::UNSIGNED_PAYLOAD.to_string(),
        )],
        body: Vec::new(),
        stream: None,
        access_key_id: config.access_key_id.clone(),
        secret: config.access_key_secret.clone(),
        region: config.region.clone(),
        time: Utc::now(),
        authority: oss.bucket_authority(BUCKET),
        path_style: false,
        sign: true,
        send_date: true,
    }
}

impl SignedRequest<'_> {
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets a header, replacing one of the same name.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .retain(|(header, _)| !header.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers
            .retain(|(header, _)| !header.eq_ignore_ascii_case(name));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn stream_body(mut self, body: reqwest::Body) -> Self {
        self.stream = Some(body);
        self
    }

    pub fn url(&self) -> String {
        let mut path = String::from("/");
        if self.path_style {
            path.push_str(&self.bucket);
            path.push('/');
        }
        path.push_str(
            &self
                .key
                .split('/')
                .map(signer::uri_encode)
                .collect::<Vec<_>>()
                .join("/"),
        );
        let query: Vec<String> = self
            .query
            .iter()
            .map(|(name, value)| {
                if value.is_empty() {
                    signer::uri_encode(name)
                } else {
                    format!("{}={}", signer::uri_encode(name), signer::uri_encode(value))
                }
            })
            .collect();
        if query.is_empty() {
            format!("http://{}{path}", self.authority)
        } else {
            format!("http://{}{path}?{}", self.authority, query.join("&"))
        }
    }

    pub async fn send(mut self) -> reqwest::Response {
        if self.sign {
            if self.send_date && !self.headers.iter().any(|(name, _)| name == "x-oss-date") {
                self.headers
                    .push(("x-oss-date".to_string(), signer::format_time(self.time)));
            }
            let signable = SignableRequest {
                method: &self.method,
                bucket: Some(&self.bucket),
                key: if self.key.is_empty() {
                    None
                } else {
                    Some(&self.key)
                },
                query: &self.query,
                headers: &self.headers,
                additional_headers: &[],
            };
            let authorization = signer::authorization(
                &self.access_key_id,
                &self.secret,
                &self.region,
                self.time,
                &signable,
            );
            self.headers
                .push(("authorization".to_string(), authorization));
        }
        let client = self.oss.http_client().expect("client builds");
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).expect("valid method");
        let mut builder = client.request(method, self.url());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let body = self
            .stream
            .take()
            .unwrap_or_else(|| reqwest::Body::from(self.body));
        builder
            .body(body)
            .send()
            .await
            .expect("the fake OSS replies")
    }
}

/// Reads an OSS error reply: the status and the XML `Code` and `Message`.
pub async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("error body reads");
    (
        status,
        xml_value(&body, "Code").unwrap_or_default(),
        xml_value(&body, "Message").unwrap_or_default(),
    )
}

/// Returns the text of the first `<name>` element, unescaped only for the entities OSS uses.
pub fn xml_value(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Deterministic test bytes of the given length.
pub fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
