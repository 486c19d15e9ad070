//! Recorded calls and injected failures of the in-memory store.

use crate::storage::ErrorKind;

/// A store operation, named as in the S3 and OSS APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    HeadObject,
    GetObject,
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    CreateMarker,
    ReadMarker,
    DeleteMarker,
    DeleteObject,
    CopyObject,
}

impl Operation {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::HeadObject => "HeadObject",
            Self::GetObject => "GetObject",
            Self::PutObject => "PutObject",
            Self::CreateMultipartUpload => "CreateMultipartUpload",
            Self::UploadPart => "UploadPart",
            Self::CompleteMultipartUpload => "CompleteMultipartUpload",
            Self::AbortMultipartUpload => "AbortMultipartUpload",
            Self::ListParts => "ListParts",
            Self::ListMultipartUploads => "ListMultipartUploads",
            Self::CreateMarker => "CreateMarker",
            Self::ReadMarker => "ReadMarker",
            Self::DeleteMarker => "DeleteMarker",
            Self::DeleteObject => "DeleteObject",
            Self::CopyObject => "CopyObject",
        }
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: Operation,
    pub key: String,
    pub part_number: Option<u32>,
}

/// Effect of an injected fault on the call it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// The call fails with this kind of error and changes nothing.
    Fail(ErrorKind),
    /// PutObject, UploadPart or CompleteMultipartUpload succeeds but returns this CRC-64 instead
    /// of the real one.
    ReportCrc64(u64),
    /// GetObject's body fails with a transient error after this many bytes.
    CutBodyAfter(u64),
}

/// A failure to inject into matching calls.
#[derive(Debug, Clone)]
pub struct Fault {
    operation: Operation,
    part_number: Option<u32>,
    /// Calls left to affect; `None` affects every matching call.
    remaining: Option<u32>,
    action: FaultAction,
}

impl Fault {
    /// Affects every call of `operation` until narrowed with [`Fault::on_part`] or [`Fault::times`].
    pub fn new(operation: Operation, action: FaultAction) -> Self {
        Self {
            operation,
            part_number: None,
            remaining: None,
            action,
        }
    }

    /// Affects only UploadPart calls for this part number.
    pub fn on_part(mut self, part_number: u32) -> Self {
        self.part_number = Some(part_number);
        self
    }

    /// Affects only the next `count` matching calls.
    pub fn times(mut self, count: u32) -> Self {
        self.remaining = Some(count);
        self
    }
}

impl Fault {
    /// Returns true when this fault applies to the call and has uses left.
    pub(super) fn matches(&self, operation: Operation, part_number: Option<u32>) -> bool {
        self.operation == operation
            && self
                .part_number
                .is_none_or(|number| Some(number) == part_number)
            && self.remaining != Some(0)
    }

    /// Uses the fault up once and returns its action.
    pub(super) fn consume(&mut self) -> FaultAction {
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining -= 1;
        }
        self.action
    }
}
