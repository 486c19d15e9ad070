//! XML rendering of the fake's replies in the RDS query shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{FakeSnapshot, Fault};

const NAMESPACE: &str = "http://rds.amazonaws.com/doc/2014-10-31/";

pub(super) fn snapshot_xml(snapshot: &FakeSnapshot, member: &str) -> String {
    let mut fields = String::new();
    let created = snapshot
        .created
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if snapshot.cluster {
        fields.push_str(&element("DBClusterSnapshotIdentifier", &snapshot.id));
        fields.push_str(&element("DBClusterIdentifier", &snapshot.source_id));
        fields.push_str(&element("DBClusterSnapshotArn", &snapshot.arn()));
        fields.push_str(&element(
            "StorageEncrypted",
            &snapshot.encrypted.to_string(),
        ));
    } else {
        fields.push_str(&element("DBSnapshotIdentifier", &snapshot.id));
        fields.push_str(&element("DBInstanceIdentifier", &snapshot.source_id));
        fields.push_str(&element("DBSnapshotArn", &snapshot.arn()));
        fields.push_str(&element("Encrypted", &snapshot.encrypted.to_string()));
    }
    fields.push_str(&element("SnapshotCreateTime", &created));
    fields.push_str(&element("Status", &snapshot.status));
    fields.push_str(&element("SnapshotType", &snapshot.snapshot_type));
    format!("<{member}>{fields}</{member}>")
}

pub(super) fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

pub(super) fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub(super) fn ok_reply(action: &str, inner: &str, request_id: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{inner}</{action}Result>\
         <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

pub(super) fn error_reply(fault: &Fault, message: &str, request_id: &str) -> Response {
    let kind = if fault.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{}</Code>\
         <Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(&fault.code),
        escape(message)
    );
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [
            ("content-type", "text/xml"),
            ("x-amzn-requestid", request_id),
        ],
        body,
    )
        .into_response()
}
