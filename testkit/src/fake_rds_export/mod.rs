//! A scripted fake of the RDS query protocol on 127.0.0.1, for the export jobs' tests.
//!
//! It serves `DescribeDBSnapshots`, `DescribeDBClusterSnapshots`, `StartExportTask` and
//! `DescribeExportTasks` as form-encoded POSTs with XML replies in the RDS shape, so
//! `aws-sdk-rds` talks to it through `endpoint_url`. Each export task follows an [`ExportPlan`]
//! that advances by one step on every `DescribeExportTasks` that lists it. Signatures are not
//! checked.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use chrono::{DateTime, Utc};

mod xml;
use xml::{element, error_reply, ok_reply, snapshot_xml};

/// The course of an export task after it starts, one step per `DescribeExportTasks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportPlan {
    /// `STARTING`, then `IN_PROGRESS` with rising progress, `COMPLETE` on describe `after`.
    Completes { after: u32 },
    /// As `Completes`, but ends `FAILED` with this `FailureCause`.
    Fails { after: u32, cause: String },
    /// As `Completes`, but ends `CANCELED`.
    Canceled { after: u32 },
    /// `STARTING`, then `IN_PROGRESS` forever.
    Stuck,
}

/// A snapshot the fake lists.
#[derive(Debug, Clone)]
pub struct FakeSnapshot {
    pub id: String,
    /// DB instance or cluster identifier.
    pub source_id: String,
    pub cluster: bool,
    pub created: DateTime<Utc>,
    pub status: String,
    pub encrypted: bool,
    pub snapshot_type: String,
}

impl FakeSnapshot {
    pub fn arn(&self) -> String {
        let kind = if self.cluster {
            "cluster-snapshot"
        } else {
            "snapshot"
        };
        format!("arn:aws:rds:us-east-1:123456789012:{kind}:{}", self.id)
    }
}

/// An error reply: the AWS error code and HTTP status.
#[derive(Debug, Clone)]
pub struct Fault {
    pub code: String,
    pub status: u16,
}

impl Fault {
    pub fn new(code: &str, status: u16) -> Self {
        Self {
            code: code.to_string(),
            status,
        }
    }
}

#[derive(Debug, Clone)]
struct Task {
    id: String,
    source_arn: String,
    bucket: String,
    prefix: String,
    plan: ExportPlan,
    describes: u32,
    started: DateTime<Utc>,
}

#[derive(Default)]
struct Script {
    snapshots: Vec<FakeSnapshot>,
    tasks: BTreeMap<String, Task>,
    /// Plans by snapshot ARN; others use `default_plan`.
    plans: BTreeMap<String, ExportPlan>,
    default_plan: Option<ExportPlan>,
    /// Faults by action, each used for one request.
    faults: BTreeMap<String, VecDeque<Fault>>,
    /// Every request, as `(action, form fields)`.
    requests: Vec<(String, BTreeMap<String, String>)>,
    next_request_id: u64,
}

/// The running fake; it stops when dropped.
pub struct FakeRdsExport {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRdsExport {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeRdsExport {
    /// Starts the fake on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/", post(handle))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake RDS server stopped");
            }
        });
        Ok(Self {
            addr,
            script,
            server,
        })
    }

    /// Returns the URL to pass as `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        lock(&self.script)
    }

    pub fn add_snapshot(&self, snapshot: FakeSnapshot) {
        self.script().snapshots.push(snapshot);
    }

    /// Sets the plan of exports of the snapshot with this ARN.
    pub fn plan_export(&self, snapshot_arn: &str, plan: ExportPlan) {
        self.script().plans.insert(snapshot_arn.to_string(), plan);
    }

    /// Sets the plan of exports without their own; `Completes { after: 2 }` when unset.
    pub fn set_default_plan(&self, plan: ExportPlan) {
        self.script().default_plan = Some(plan);
    }

    /// Adds a task as if someone had started it at `started`.
    pub fn add_task(&self, id: &str, source_arn: &str, plan: ExportPlan, started: DateTime<Utc>) {
        let task = Task {
            id: id.to_string(),
            source_arn: source_arn.to_string(),
            bucket: "exports".into(),
            prefix: "mysql".into(),
            plan,
            describes: 0,
            started,
        };
        self.script().tasks.insert(id.to_string(), task);
    }

    /// Makes the next `count` requests of `action` fail with `fault`, after any queued before.
    pub fn fail_next(&self, action: &str, fault: Fault, count: usize) {
        let mut script = self.script();
        let queue = script.faults.entry(action.to_string()).or_default();
        queue.extend(std::iter::repeat_n(fault, count));
    }

    /// Makes the next `count` requests of `action` fail with `Throttling` (HTTP 400).
    pub fn throttle_next(&self, action: &str, count: usize) {
        self.fail_next(action, Fault::new("Throttling", 400), count);
    }

    /// Returns the form fields of every request of `action`, in order.
    pub fn requests(&self, action: &str) -> Vec<BTreeMap<String, String>> {
        let script = self.script();
        script
            .requests
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// Returns the ids of the tasks started so far, including added ones.
    pub fn task_ids(&self) -> Vec<String> {
        self.script().tasks.keys().cloned().collect()
    }
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    // A test that panicked while holding the lock leaves usable data behind.
    script
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn handle(State(script): State<Arc<Mutex<Script>>>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let action = form.get("Action").cloned().unwrap_or_default();
    let mut script = lock(&script);
    script.next_request_id += 1;
    let request_id = format!("fake-rds-{:04}", script.next_request_id);
    script.requests.push((action.clone(), form.clone()));

    if let Some(fault) = script.faults.get_mut(&action).and_then(VecDeque::pop_front) {
        return error_reply(&fault, &format!("scripted fault for {action}"), &request_id);
    }
    let result = match action.as_str() {
        "DescribeDBSnapshots" => describe_snapshots(&script, &form, false),
        "DescribeDBClusterSnapshots" => describe_snapshots(&script, &form, true),
        "StartExportTask" => start_export(&mut script, &form),
        "DescribeExportTasks" => describe_exports(&mut script, &form),
        _ => Err((
            Fault::new("InvalidAction", 400),
            format!("action {action} is not supported"),
        )),
    };
    match result {
        Ok(inner) => ok_reply(&action, &inner, &request_id),
        Err((fault, message)) => error_reply(&fault, &message, &request_id),
    }
}

type ActionResult = Result<String, (Fault, String)>;

fn page<T>(items: Vec<T>, form: &BTreeMap<String, String>) -> (Vec<T>, Option<String>) {
    let size = form
        .get("MaxRecords")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100);
    let start = form
        .get("Marker")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let total = items.len();
    let chosen: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| (start + size).to_string());
    (chosen, next)
}

fn describe_snapshots(
    script: &Script,
    form: &BTreeMap<String, String>,
    cluster: bool,
) -> ActionResult {
    let (source_field, id_field, list, member) = if cluster {
        (
            "DBClusterIdentifier",
            "DBClusterSnapshotIdentifier",
            "DBClusterSnapshots",
            "DBClusterSnapshot",
        )
    } else {
        (
            "DBInstanceIdentifier",
            "DBSnapshotIdentifier",
            "DBSnapshots",
            "DBSnapshot",
        )
    };
    let matching: Vec<&FakeSnapshot> = script
        .snapshots
        .iter()
        .filter(|s| s.cluster == cluster)
        .filter(|s| form.get(source_field).is_none_or(|v| *v == s.source_id))
        .filter(|s| {
            form.get(id_field)
                .is_none_or(|v| *v == s.id || *v == s.arn())
        })
        .collect();
    if let Some(id) = form.get(id_field)
        && matching.is_empty()
    {
        let code = if cluster {
            "DBClusterSnapshotNotFoundFault"
        } else {
            "DBSnapshotNotFound"
        };
        return Err((Fault::new(code, 404), format!("snapshot {id} not found")));
    }
    let (chosen, marker) = page(matching, form);
    let mut xml = String::new();
    if let Some(marker) = marker {
        xml.push_str(&element("Marker", &marker));
    }
    xml.push_str(&format!("<{list}>"));
    for snapshot in chosen {
        xml.push_str(&snapshot_xml(snapshot, member));
    }
    xml.push_str(&format!("</{list}>"));
    Ok(xml)
}

fn start_export(script: &mut Script, form: &BTreeMap<String, String>) -> ActionResult {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let id = field("ExportTaskIdentifier");
    let source_arn = field("SourceArn");
    for required in [
        "ExportTaskIdentifier",
        "SourceArn",
        "S3BucketName",
        "IamRoleArn",
        "KmsKeyId",
    ] {
        if form.get(required).is_none_or(String::is_empty) {
            let fault = Fault::new("InvalidParameterValue", 400);
            return Err((fault, format!("{required} is required")));
        }
    }
    if script.tasks.contains_key(&id) {
        let fault = Fault::new("ExportTaskAlreadyExists", 400);
        return Err((fault, format!("export task {id} already exists")));
    }
    if !script.snapshots.iter().any(|s| s.arn() == source_arn) {
        let fault = Fault::new("DBSnapshotNotFound", 404);
        return Err((fault, format!("snapshot {source_arn} not found")));
    }
    let plan = script
        .plans
        .get(&source_arn)
        .or(script.default_plan.as_ref())
        .cloned()
        .unwrap_or(ExportPlan::Completes { after: 2 });
    let task = Task {
        id: id.clone(),
        source_arn,
        bucket: field("S3BucketName"),
        prefix: field("S3Prefix"),
        plan,
        describes: 0,
        started: Utc::now(),
    };
    let xml = task_fields(&task);
    script.tasks.insert(id, task);
    Ok(xml)
}

fn describe_exports(script: &mut Script, form: &BTreeMap<String, String>) -> ActionResult {
    let id = form.get("ExportTaskIdentifier");
    let source = form.get("SourceArn");
    let ids: Vec<String> = script
        .tasks
        .values()
        .filter(|t| id.is_none_or(|v| *v == t.id))
        .filter(|t| source.is_none_or(|v| *v == t.source_arn))
        .map(|t| t.id.clone())
        .collect();
    if let Some(id) = id
        && ids.is_empty()
    {
        return Err((
            Fault::new("ExportTaskNotFound", 404),
            format!("export task {id} not found"),
        ));
    }

    let (chosen, marker) = page(ids, form);
    let mut xml = String::new();
    if let Some(marker) = marker {
        xml.push_str(&element("Marker", &marker));
    }
    xml.push_str("<ExportTasks>");
    for id in chosen {
        if let Some(task) = script.tasks.get_mut(&id) {
            task.describes += 1;
            xml.push_str(&format!("<ExportTask>{}</ExportTask>", task_fields(task)));
        }
    }
    xml.push_str("</ExportTasks>");
    Ok(xml)
}

/// Returns status, progress and failure cause of `task` after its describes so far.
fn task_state(task: &Task) -> (&'static str, i32, Option<String>) {
    let step = task.describes;
    let (after, end, cause) = match &task.plan {
        ExportPlan::Completes { after } => (*after, "COMPLETE", None),
        ExportPlan::Fails { after, cause } => (*after, "FAILED", Some(cause.clone())),
        ExportPlan::Canceled { after } => (*after, "CANCELED", None),
        ExportPlan::Stuck => (u32::MAX, "", None),
    };
    if step == 0 {
        return ("STARTING", 0, None);
    }
    if step >= after {
        let percent = if end == "COMPLETE" { 100 } else { 50 };
        return (end, percent, cause);
    }
    let percent = if after == u32::MAX {
        10
    } else {
        (step * 100 / after) as i32
    };
    ("IN_PROGRESS", percent, None)
}

fn task_fields(task: &Task) -> String {
    let (status, percent, cause) = task_state(task);
    let started = task
        .started
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut xml = String::new();
    xml.push_str(&element("ExportTaskIdentifier", &task.id));
    xml.push_str(&element("SourceArn", &task.source_arn));
    xml.push_str(&element("TaskStartTime", &started));
    xml.push_str(&element("S3Bucket", &task.bucket));
    xml.push_str(&element("S3Prefix", &task.prefix));
    xml.push_str(&element("Status", status));
    xml.push_str(&element("PercentProgress", &percent.to_string()));
    xml.push_str(&element(
        "TotalExtractedDataInGB",
        &(percent / 10).to_string(),
    ));
    if let Some(cause) = cause {
        xml.push_str(&element("FailureCause", &cause));
    }
    xml
}
