//! `GET /docs`: a page that lists every route from the OpenAPI document and, when the browser
//! can load it, renders the document with Redoc from a CDN. The route list is plain HTML, so
//! the page is useful without the script, such as where the CDN is blocked.

/// The Redoc bundle, pinned to one release so the page does not change under its readers.
/// jsDelivr serves every npm release of Redoc.
const REDOC_SCRIPT: &str = "https://cdn.jsdelivr.net/npm/redoc@2.5.0/bundles/redoc.standalone.js";

use axum::response::Html;
use utoipa::openapi::OpenApi;

/// Builds the page once from `openapi`.
pub fn page(openapi: &OpenApi) -> Html<String> {
    let mut rows = String::new();
    for (path, item) in &openapi.paths.paths {
        let operations = [
            ("GET", item.get.as_ref()),
            ("POST", item.post.as_ref()),
            ("PUT", item.put.as_ref()),
            ("DELETE", item.delete.as_ref()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let summary = operation
                .summary
                .as_deref()
                .or(operation.description.as_deref())
                .unwrap_or("");
            rows.push_str(&format!(
                "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td></tr>\n",
                escape(path),
                escape(summary)
            ));
        }
    }
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>backup-bridge API</title></head>
<body>
<h1>backup-bridge API</h1>
<p>The OpenAPI 3.1 document: <a href="openapi.json">openapi.json</a>. Errors are <code>{{"code", "message"}}</code>;
send <code>Accept-Language: en</code> for English messages (the default is Simplified Chinese).</p>
<table>
<thead><tr><th>Method</th><th>Path</th><th>Summary</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<div id="redoc"></div>
<script src="{REDOC_SCRIPT}"></script>
<script>if (window.Redoc) {{ Redoc.init("openapi.json", {{}}, document.getElementById("redoc")); }}</script>
</body>
</html>
"#
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
