//! The script a test installs in the fault proxy: which requests a rule matches, which of those it
//! acts on, what it does to them, and the log of what the proxy did.

use std::time::Duration;

use bytes::Bytes;

/// A filter on requests plus an occurrence selector.
///
/// Every condition must hold for a request to match. Each rule counts the requests its filter
/// matches, from 1, and acts only on the occurrences its selector accepts: every one by default,
/// only the k-th with [`Match::nth`], or the first n with [`Match::times`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    method: Option<String>,
    path_contains: Vec<String>,
    path_prefix: Option<String>,
    headers_present: Vec<String>,
    occurrence: Occurrence,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Occurrence {
    #[default]
    Every,
    Nth(u64),
    FirstN(u64),
}

impl Match {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches requests with this method, compared case-sensitively as HTTP requires.
    pub fn method(method: &str) -> Self {
        Self {
            method: Some(method.to_owned()),
            ..Self::default()
        }
    }

    /// Also requires the request target (path and query, as sent) to contain `fragment`.
    pub fn path_contains(mut self, fragment: &str) -> Self {
        self.path_contains.push(fragment.to_owned());
        self
    }

    /// Also requires the request target (path and query, as sent) to start with `prefix`.
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_owned());
        self
    }

    /// Also requires a header with this name, compared case-insensitively.
    pub fn header(mut self, name: &str) -> Self {
        self.headers_present.push(name.to_ascii_lowercase());
        self
    }

    /// Acts only on the k-th matching request, counting from 1.
    pub fn nth(mut self, k: u64) -> Self {
        self.occurrence = Occurrence::Nth(k);
        self
    }

    /// Acts only on the first `n` matching requests.
    pub fn times(mut self, n: u64) -> Self {
        self.occurrence = Occurrence::FirstN(n);
        self
    }

    pub(crate) fn matches(&self, request: &RequestHead) -> bool {
        if self.method.as_deref().is_some_and(|m| m != request.method) {
            return false;
        }
        if !self
            .path_contains
            .iter()
            .all(|fragment| request.path_and_query.contains(fragment.as_str()))
        {
            return false;
        }
        if self
            .path_prefix
            .as_deref()
            .is_some_and(|prefix| !request.path_and_query.starts_with(prefix))
        {
            return false;
        }
        self.headers_present
            .iter()
            .all(|name| request.header_names.iter().any(|present| present == name))
    }

    fn selects(&self, occurrence: u64) -> bool {
        match self.occurrence {
            Occurrence::Every => true,
            Occurrence::Nth(k) => occurrence == k,
            Occurrence::FirstN(n) => occurrence <= n,
        }
    }
}

/// Fault applied to a request that a rule selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forwards the request and the reply unchanged. This is what happens when no rule acts.
    Forward,
    /// Waits this long, then forwards.
    Delay(Duration),
    /// Forwards the request head and the first n request body bytes (as sent, so chunk framing
    /// counts), then resets the client connection (SO_LINGER 0) and closes the upstream one.
    /// A body shorter than n is forwarded whole and the reset follows before any reply.
    ResetAfterRequestBytes(u64),
    /// Forwards the request and the reply head, then the first n reply body bytes, then resets
    /// the client connection. The reset discards unsent data, so the client may read fewer.
    ResetAfterResponseBytes(u64),
    /// Sends this reply without contacting the upstream, adding `Content-Length`. The request
    /// body is read and discarded first, so the connection stays usable.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// Forwards the request and the reply head unchanged (with the full `Content-Length`), then
    /// only the first `after` body bytes, then closes the client connection cleanly.
    TruncateResponse { after: u64 },
    /// Forwards the request, reads the upstream's whole reply so the upstream has finished with
    /// it, then closes the client connection without sending the final reply. Interim `1xx`
    /// replies such as `100 Continue` still reach the client.
    DropReply,
}

impl Action {
    /// Builds a `Respond` action with an XML body, as S3, OSS and the RDS APIs return errors.
    pub fn respond_xml(status: u16, xml: &str) -> Self {
        Action::Respond {
            status,
            headers: vec![("Content-Type".to_owned(), "application/xml".to_owned())],
            body: Bytes::from(xml.to_owned()),
        }
    }

    /// Builds the 503 `SlowDown` reply S3 sends when it throttles a client.
    pub fn s3_slow_down() -> Self {
        Self::respond_xml(
            503,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
             <Message>Please reduce your request rate.</Message>\
             <RequestId>FAULTPROXY</RequestId></Error>",
        )
    }

    /// Builds the 403 `AccessDenied` "Request has expired." reply that S3 and OSS send for a
    /// presigned URL used after its expiry time.
    pub fn expired_link() -> Self {
        Self::respond_xml(
            403,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
             <Message>Request has expired.</Message>\
             <RequestId>FAULTPROXY</RequestId></Error>",
        )
    }
}

/// One entry of the script: a filter with its occurrence selector, and the action it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: Match,
    pub action: Action,
}

impl Rule {
    pub fn new(matcher: Match, action: Action) -> Self {
        Self { matcher, action }
    }
}

/// A request the proxy received and what it did with it, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path_and_query: String,
    /// The final status the client received, or `None` when it received no final reply head.
    pub status: Option<u16>,
    /// The final status the upstream sent, or `None` when the upstream was not asked or did
    /// not reply.
    pub upstream_status: Option<u16>,
    pub action_taken: Action,
}

/// The parts of a request head that rules match on.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    pub method: String,
    pub path_and_query: String,
    /// Header names, lowercased.
    pub header_names: Vec<String>,
}

struct ScriptedRule {
    rule: Rule,
    matched: u64,
}

/// The installed rules with their match counters.
#[derive(Default)]
pub(crate) struct Script {
    rules: Vec<ScriptedRule>,
}

impl Script {
    pub fn add(&mut self, rule: Rule) {
        self.rules.push(ScriptedRule { rule, matched: 0 });
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Picks the action for a request. Every rule whose filter matches counts the request, even
    /// when an earlier rule acts on it, so `nth(k)` always means the k-th request that filter
    /// matched. The first rule, in installation order, that selects the request decides.
    pub fn decide(&mut self, request: &RequestHead) -> Action {
        let mut chosen = None;
        for scripted in &mut self.rules {
            if !scripted.rule.matcher.matches(request) {
                continue;
            }
            scripted.matched += 1;
            if chosen.is_none() && scripted.rule.matcher.selects(scripted.matched) {
                chosen = Some(scripted.rule.action.clone());
            }
        }
        chosen.unwrap_or(Action::Forward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, target: &str, headers: &[&str]) -> RequestHead {
        RequestHead {
            method: method.to_owned(),
            path_and_query: target.to_owned(),
            header_names: headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    #[test]
    fn nth_selects_only_kth_match() {
        let mut script = Script::default();
        script.add(Rule::new(
            Match::method("PUT").path_contains("partNumber=3").nth(2),
            Action::DropReply,
        ));
        let part3 = head("PUT", "/b/k?partNumber=3&uploadId=u", &[]);
        let part2 = head("PUT", "/b/k?partNumber=2&uploadId=u", &[]);
        assert_eq!(script.decide(&part3), Action::Forward);
        assert_eq!(script.decide(&part2), Action::Forward);
        assert_eq!(script.decide(&part3), Action::DropReply);
        assert_eq!(script.decide(&part3), Action::Forward);
    }

    #[test]
    fn times_selects_first_n_matches() {
        let mut script = Script::default();
        script.add(Rule::new(Match::any().times(2), Action::s3_slow_down()));
        let get = head("GET", "/", &[]);
        assert_eq!(script.decide(&get), Action::s3_slow_down());
        assert_eq!(script.decide(&get), Action::s3_slow_down());
        assert_eq!(script.decide(&get), Action::Forward);
    }

    #[test]
    fn later_rules_count_requests_earlier_rules_took() {
        let mut script = Script::default();
        script.add(Rule::new(Match::method("PUT").nth(1), Action::DropReply));
        script.add(Rule::new(
            Match::method("PUT").nth(2),
            Action::TruncateResponse { after: 1 },
        ));
        let put = head("PUT", "/k", &[]);
        assert_eq!(script.decide(&put), Action::DropReply);
        assert_eq!(script.decide(&put), Action::TruncateResponse { after: 1 });
    }

    #[test]
    fn filter_requires_every_condition() {
        let matcher = Match::method("GET")
            .path_prefix("/bucket/")
            .path_contains("x-oss-process")
            .header("Range");
        assert!(matcher.matches(&head("GET", "/bucket/k?x-oss-process=1", &["range"])));
        assert!(!matcher.matches(&head("GET", "/bucket/k?x-oss-process=1", &[])));
        assert!(!matcher.matches(&head("HEAD", "/bucket/k?x-oss-process=1", &["range"])));
        assert!(!matcher.matches(&head("GET", "/other/k?x-oss-process=1", &["range"])));
        assert!(!matcher.matches(&head("GET", "/bucket/k", &["range"])));
    }

    #[test]
    fn cleared_script_forwards_everything() {
        let mut script = Script::default();
        script.add(Rule::new(Match::any(), Action::DropReply));
        script.clear();
        assert_eq!(script.decide(&head("GET", "/", &[])), Action::Forward);
    }
}
