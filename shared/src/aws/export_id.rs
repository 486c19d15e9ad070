//! Deterministic export task identifiers.
//!
//! RDS accepts an `ExportTaskIdentifier` that starts with a letter, contains only ASCII letters,
//! digits and hyphens, has no two hyphens in a row, does not end with a hyphen and is at most 60
//! characters long. Snapshot identifiers break these rules freely (automated ones start with
//! `rds:`), so the id keeps a readable, cleaned part of the snapshot name. It ends with a hash of
//! the full name, which keeps two long names with the same first 60 characters apart.

use sha2::{Digest, Sha256};

/// The maximum length of an export task identifier.
pub const MAX_LEN: usize = 60;

/// The prefix that marks the tasks this product starts, when the deployment sets none.
pub const DEFAULT_PREFIX: &str = "bb";

/// The maximum length of a cleaned prefix, so that the snapshot name keeps some room.
const MAX_PREFIX_LEN: usize = 20;

/// Hex digits of SHA-256 kept in the id: 32 bits, so a collision between two snapshots of one
/// account is unlikely but not impossible.
const HASH_LEN: usize = 8;

/// Returns the export task id for `snapshot_id` under [`DEFAULT_PREFIX`].
pub fn for_snapshot(snapshot_id: &str) -> String {
    with_prefix(DEFAULT_PREFIX, snapshot_id)
}

/// Returns the export task id for `snapshot_id` under `prefix`, as
/// `<prefix>-<cleaned snapshot id>-<hash>`. The same inputs always give the same id.
///
/// NOTE: the hash covers the snapshot identifier only, so an instance snapshot and a cluster
/// snapshot with the same identifier get the same id. RDS then rejects the second start with
/// `ExportTaskAlreadyExists`.
pub fn with_prefix(prefix: &str, snapshot_id: &str) -> String {
    let prefix = normalize_prefix(prefix);
    let hash = hex::encode(Sha256::digest(snapshot_id.as_bytes()));
    let hash = &hash[..HASH_LEN];

    // Room for the name between "<prefix>-" and "-<hash>".
    let room = MAX_LEN - prefix.len() - 1 - 1 - HASH_LEN;
    let mut name = clean(snapshot_id);
    name.truncate(room);
    let name = name.trim_end_matches('-');

    if name.is_empty() {
        format!("{prefix}-{hash}")
    } else {
        format!("{prefix}-{name}-{hash}")
    }
}

/// Cleans a deployment prefix the way ids are cleaned: lowercase, at most 20 characters, starting
/// with a letter (`x` is put in front when it would not). The export poll job matches task ids
/// against `"<normalized prefix>-"`.
pub fn normalize_prefix(prefix: &str) -> String {
    let mut cleaned = clean(prefix);
    if !cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        cleaned.insert(0, 'x');
    }
    cleaned.truncate(MAX_PREFIX_LEN);
    cleaned.trim_end_matches('-').to_string()
}

/// Returns true when `id` meets the RDS rules for an export task identifier.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-')
}

/// Lowercases ASCII letters and digits, turns every run of other characters into one hyphen and
/// drops hyphens at both ends.
fn clean(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            cleaned.push(c.to_ascii_lowercase());
        } else if !cleaned.is_empty() && !cleaned.ends_with('-') {
            cleaned.push('-');
        }
    }
    cleaned.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn awkward_names() -> Vec<String> {
        let long_a = format!("{}{}", "a".repeat(60), "-one");
        let long_b = format!("{}{}", "a".repeat(60), "-two");
        let mut names: Vec<String> = [
            "rds:9-prod--db-2024-01-01-00-05",
            "rds:prod-db-2024-01-01-00-05",
            "prod-db-2024-01-01-00-05",
            "PROD-DB-2024-01-01-00-05",
            "9-starts-with-digit",
            "-",
            "---",
            ":::",
            "!@#$%^&*()",
            "",
            "ends-with-hyphen-",
            "a",
            "数据库-快照",
            "awsbackup:job-1234",
            "rds:cluster-aurora--prod-2024-12-31-23-59",
            long_a.as_str(),
            long_b.as_str(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();

        // Long names that share their first 70 characters and differ only at the end, where a
        // plain cut at 60 would merge them.
        let shared = format!("rds:{}", "x-".repeat(35));
        for i in 0..50 {
            names.push(format!("{shared}{i}"));
        }

        // Random names drawn from an alphabet of letters, digits and troublesome symbols.
        let alphabet: Vec<char> = "aZ9-:_.- /\\--:é".chars().collect();
        let mut rng = StdRng::seed_from_u64(20240101);
        for _ in 0..500 {
            let len = rng.random_range(0..120);
            let name: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            names.push(name);
        }
        names
    }

    #[test]
    fn every_id_is_valid() {
        for name in awkward_names() {
            let id = for_snapshot(&name);
            assert!(
                is_valid(&id),
                "id {id:?} for snapshot {name:?} breaks the RDS rules"
            );
        }
    }

    #[test]
    fn ids_are_unique_per_snapshot() {
        let mut seen: HashMap<String, String> = HashMap::new();
        for name in awkward_names() {
            let id = for_snapshot(&name);
            if let Some(previous) = seen.insert(id.clone(), name.clone()) {
                assert_eq!(
                    previous, name,
                    "snapshots {previous:?} and {name:?} share id {id}"
                );
            }
        }
    }

    #[test]
    fn ids_are_deterministic() {
        for name in awkward_names() {
            assert_eq!(for_snapshot(&name), for_snapshot(&name));
        }
    }

    #[test]
    fn id_keeps_readable_snapshot_name() {
        let id = for_snapshot("rds:9-prod--db-2024-01-01-00-05");
        assert!(
            id.starts_with("bb-rds-9-prod-db-2024-01-01-00-05-"),
            "id {id}"
        );
        assert_eq!(
            id.len(),
            "bb-rds-9-prod-db-2024-01-01-00-05-".len() + HASH_LEN
        );
    }

    #[test]
    fn symbol_only_name_yields_prefix_and_hash() {
        let id = for_snapshot(":::");
        assert_eq!(id.len(), DEFAULT_PREFIX.len() + 1 + HASH_LEN);
        assert!(is_valid(&id));
        assert_ne!(id, for_snapshot("---"));
    }

    #[test]
    fn prefix_is_cleaned_and_starts_with_letter() {
        assert_eq!(normalize_prefix("Prod_Backup"), "prod-backup");
        assert_eq!(normalize_prefix("9lives"), "x9lives");
        assert_eq!(normalize_prefix("::"), "x");
        assert_eq!(normalize_prefix(&"p-".repeat(30)).len(), MAX_PREFIX_LEN - 1);
        let id = with_prefix("9 Lives!", "snap");
        assert!(id.starts_with("x9-lives-snap-"), "id {id}");
        assert!(is_valid(&id));
    }

    #[test]
    fn validity_check_rejects_each_broken_rule() {
        assert!(is_valid("a-1"));
        assert!(!is_valid(""));
        assert!(!is_valid("1abc"));
        assert!(!is_valid("a--b"));
        assert!(!is_valid("ab-"));
        assert!(!is_valid("a_b"));
        assert!(!is_valid(&"a".repeat(61)));
    }
}
