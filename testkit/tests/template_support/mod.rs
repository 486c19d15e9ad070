//! Reads `template.yaml` for the template tests: the functions, their merged environment and
//! events, and the values that the CloudFormation intrinsics resolve to on a sample deployment.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_yaml::Value;
use serde_yaml::value::TaggedValue;

/// What a user would enter for the parameters without a default during `sam deploy --guided`.
const SAMPLE_PARAMETERS: &[(&str, &str)] = &[
    ("SourceBucketName", "example-backup-bridge"),
    ("OssEndpoint", "oss-cn-hangzhou.aliyuncs.com"),
    ("OssRegion", "cn-hangzhou"),
    ("OssBucket", "example-oss-backups"),
    (
        "CredentialsSecretArn",
        "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:backup-bridge-AbCdEf",
    ),
    (
        "ExportKmsKeyArn",
        "arn:aws:kms:ap-northeast-1:123456789012:key/00000000-0000-0000-0000-000000000000",
    ),
    ("RdsSources", "instance:prod-db,cluster:aurora-prod"),
    ("RdsInstanceIds", "rm-bp1abc,rm-bp2def"),
];

/// The pseudo parameters of the sample deployment.
const PSEUDO_PARAMETERS: &[(&str, &str)] = &[
    ("AWS::Partition", "aws"),
    ("AWS::Region", "ap-northeast-1"),
    ("AWS::AccountId", "123456789012"),
    ("AWS::StackName", "backup-bridge"),
    ("AWS::URLSuffix", "amazonaws.com"),
];

/// The parsed template.
pub struct Template {
    root: Value,
}

/// One function of the template.
pub struct Function {
    pub logical_id: String,
    /// The cargo binary that `BuildProperties.Binary` names.
    pub binary: String,
    properties: Value,
}

impl Template {
    /// Loads `template.yaml` from the workspace root.
    pub fn load() -> Self {
        let path = testkit::paths::workspace_root()
            .expect("workspace root")
            .join("template.yaml");
        let text = std::fs::read_to_string(&path).expect("template.yaml is readable");
        let root = serde_yaml::from_str(&text).expect("template.yaml is valid YAML");
        Self { root }
    }

    fn resources(&self) -> &serde_yaml::Mapping {
        self.root["Resources"]
            .as_mapping()
            .expect("Resources is a mapping")
    }

    /// Returns every `AWS::Serverless::Function`.
    pub fn functions(&self) -> Vec<Function> {
        self.resources()
            .iter()
            .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
            .map(|(id, resource)| Function {
                logical_id: id.as_str().unwrap_or_default().to_string(),
                binary: resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                properties: resource["Properties"].clone(),
            })
            .collect()
    }

    /// Returns the function built from `binary`.
    pub fn function(&self, binary: &str) -> Function {
        self.functions()
            .into_iter()
            .find(|function| function.binary == binary)
            .unwrap_or_else(|| panic!("template.yaml has no function built from {binary}"))
    }

    /// Returns the environment of `function`: the Globals variables merged with its own, as SAM
    /// merges them, each resolved to its value on the sample deployment.
    pub fn environment(&self, function: &Function) -> BTreeMap<String, String> {
        let mut merged = BTreeMap::new();
        let sources = [
            &self.root["Globals"]["Function"]["Environment"]["Variables"],
            &function.properties["Environment"]["Variables"],
        ];
        for variables in sources {
            if let Some(variables) = variables.as_mapping() {
                for (name, value) in variables {
                    let name = name.as_str().expect("variable names are strings");
                    merged.insert(name.to_string(), self.resolve(value));
                }
            }
        }
        merged
    }

    /// Returns the events of `function` as (name, type, properties).
    pub fn events(&self, function: &Function) -> Vec<(String, String, Value)> {
        function.properties["Events"]
            .as_mapping()
            .map(|events| {
                events
                    .iter()
                    .map(|(name, event)| {
                        (
                            name.as_str().unwrap_or_default().to_string(),
                            event["Type"].as_str().unwrap_or_default().to_string(),
                            event["Properties"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Returns the value of a parameter on the sample deployment: its default, else the sample.
    pub fn parameter(&self, name: &str) -> Option<String> {
        if let Some((_, value)) = PSEUDO_PARAMETERS.iter().find(|(pseudo, _)| *pseudo == name) {
            return Some(value.to_string());
        }
        let parameter = self.root["Parameters"].get(name)?;
        if let Some(default) = parameter.get("Default") {
            return Some(scalar(default));
        }
        SAMPLE_PARAMETERS
            .iter()
            .find(|(sample, _)| *sample == name)
            .map(|(_, value)| value.to_string())
            .or_else(|| panic!("parameter {name} has no default and no sample value"))
    }

    /// Resolves `!Ref`, `!GetAtt`, `!Sub` and `!Join` on the sample deployment. A reference to a
    /// resource resolves to a placeholder that names it, with an ARN shape for `.Arn`.
    pub fn resolve(&self, value: &Value) -> String {
        match value {
            Value::Tagged(tagged) => self.resolve_tagged(tagged),
            Value::Mapping(mapping) if mapping.len() == 1 => {
                let (key, inner) = mapping.iter().next().expect("one entry");
                let tag = key.as_str().unwrap_or_default().trim_start_matches("Fn::");
                let tagged = TaggedValue {
                    tag: serde_yaml::value::Tag::new(tag),
                    value: inner.clone(),
                };
                self.resolve_tagged(&tagged)
            }
            other => scalar(other),
        }
    }

    fn resolve_tagged(&self, tagged: &TaggedValue) -> String {
        let tag = tagged.tag.to_string();
        match tag.trim_start_matches('!') {
            "Ref" => {
                let name = scalar(&tagged.value);
                self.parameter(&name)
                    .unwrap_or_else(|| format!("{name}-physical-id"))
            }
            "GetAtt" => {
                let target = match &tagged.value {
                    Value::Sequence(parts) => {
                        parts.iter().map(scalar).collect::<Vec<_>>().join(".")
                    }
                    other => scalar(other),
                };
                let (resource, attribute) = target.split_once('.').unwrap_or((&target, ""));
                match attribute {
                    "Arn" => format!("arn:aws:iam::123456789012:role/{resource}"),
                    _ => format!("{resource}-{attribute}"),
                }
            }
            "Join" => {
                let parts = tagged.value.as_sequence().expect("!Join takes a list");
                let separator = scalar(&parts[0]);
                match &parts[1] {
                    Value::Sequence(items) => items
                        .iter()
                        .map(|item| self.resolve(item))
                        .collect::<Vec<_>>()
                        .join(&separator),
                    // A !Ref to a CommaDelimitedList parameter is already comma-separated.
                    list => self.resolve(list),
                }
            }
            "Sub" => {
                let mut text = scalar(&tagged.value);
                while let Some(start) = text.find("${") {
                    let end = start + text[start..].find('}').expect("closed ${");
                    let name = text[start + 2..end].to_string();
                    let value = self
                        .parameter(&name)
                        .unwrap_or_else(|| format!("{name}-physical-id"));
                    text.replace_range(start..=end, &value);
                }
                text
            }
            other => panic!("unsupported intrinsic !{other} in template.yaml"),
        }
    }

    /// Returns the policy statements of `function`, with the resources resolved on the sample
    /// deployment.
    pub fn statements(&self, function: &Function) -> Vec<Statement> {
        let mut statements = Vec::new();
        for policy in function.properties["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                statements.push(Statement {
                    actions: strings(&statement["Action"], scalar),
                    resources: strings(&statement["Resource"], |value| self.resolve(value)),
                });
            }
        }
        statements
    }
}

/// One IAM policy statement, resolved.
#[derive(Debug)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

fn strings(value: &Value, convert: impl Fn(&Value) -> String) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().map(convert).collect(),
        Value::Null => Vec::new(),
        other => vec![convert(other)],
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar in template.yaml, found {other:?}"),
    }
}
