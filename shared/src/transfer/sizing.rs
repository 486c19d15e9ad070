//! Part sizing: the configured part size, grown so that no copy needs more than the store's
//! maximum part count, within each store's part and object size limits.

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Multipart limits of one destination store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    /// Minimum size of every part but the last.
    pub min_part_size: u64,
    pub max_part_size: u64,
    pub max_parts: u32,
    pub max_object_size: u64,
}

impl PartLimits {
    /// Aliyun OSS: parts of 100 KB to 5 GB, at most 10,000 parts, so objects up to
    /// 10,000 × 5 GiB (the "48.8 TB" of the OSS documentation).
    pub const OSS: Self = Self {
        min_part_size: 100 * 1024,
        max_part_size: 5 * GIB,
        max_parts: 10_000,
        max_object_size: 10_000 * 5 * GIB,
    };

    /// Amazon S3: parts of 5 MiB to 5 GiB, at most 10,000 parts, objects up to 5 TiB.
    pub const S3: Self = Self {
        min_part_size: 5 * MIB,
        max_part_size: 5 * GIB,
        max_parts: 10_000,
        max_object_size: 5 * 1024 * GIB,
    };
}

/// An object larger than the destination store accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("object of {size} bytes exceeds the destination's maximum object size of {max} bytes")]
pub struct ObjectTooLarge {
    pub size: u64,
    pub max: u64,
}

/// Chooses the part size for an object of `object_size` bytes.
///
/// Starts from `configured`, raises it to the store's minimum, and grows it (rounded up to whole
/// MiB) when the object would otherwise need more than `max_parts` parts. A configured size above
/// the store's maximum part size is lowered to it.
pub fn plan_part_size(
    object_size: u64,
    configured: u64,
    limits: &PartLimits,
) -> Result<u64, ObjectTooLarge> {
    if object_size > limits.max_object_size {
        return Err(ObjectTooLarge {
            size: object_size,
            max: limits.max_object_size,
        });
    }
    let mut part_size = configured.clamp(limits.min_part_size, limits.max_part_size);
    let needed = object_size.div_ceil(u64::from(limits.max_parts));
    if part_size < needed {
        part_size = needed
            .div_ceil(MIB)
            .saturating_mul(MIB)
            .min(limits.max_part_size);
    }
    Ok(part_size)
}

/// Returns how many parts an object of `object_size` bytes needs at `part_size`; an empty
/// object still needs one request.
pub fn part_count(object_size: u64, part_size: u64) -> u64 {
    object_size.div_ceil(part_size.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_table() {
        let cases: &[(&str, u64, u64, PartLimits, u64)] = &[
            (
                "small object keeps the default",
                100 * MIB,
                16 * MIB,
                PartLimits::OSS,
                16 * MIB,
            ),
            (
                "exactly 10,000 default parts",
                10_000 * 16 * MIB,
                16 * MIB,
                PartLimits::OSS,
                16 * MIB,
            ),
            (
                "one byte over grows to the next MiB",
                10_000 * 16 * MIB + 1,
                16 * MIB,
                PartLimits::OSS,
                17 * MIB,
            ),
            (
                "1 TiB on OSS",
                1024 * GIB,
                16 * MIB,
                PartLimits::OSS,
                105 * MIB,
            ),
            (
                "OSS maximum needs 5 GiB parts",
                PartLimits::OSS.max_object_size,
                16 * MIB,
                PartLimits::OSS,
                5 * GIB,
            ),
            (
                "S3 maximum of 5 TiB",
                PartLimits::S3.max_object_size,
                16 * MIB,
                PartLimits::S3,
                525 * MIB,
            ),
            (
                "below the S3 minimum is raised",
                100 * MIB,
                MIB,
                PartLimits::S3,
                5 * MIB,
            ),
            (
                "below the OSS minimum is raised",
                100 * MIB,
                1024,
                PartLimits::OSS,
                100 * 1024,
            ),
            (
                "above the maximum part size is lowered",
                100 * GIB,
                8 * GIB,
                PartLimits::S3,
                5 * GIB,
            ),
            ("zero-byte object", 0, 16 * MIB, PartLimits::OSS, 16 * MIB),
        ];
        for (case, size, configured, limits, expected) in cases {
            let planned = plan_part_size(*size, *configured, limits);
            assert_eq!(planned, Ok(*expected), "{case}");
            assert!(
                part_count(*size, *expected) <= u64::from(limits.max_parts),
                "{case}: too many parts"
            );
        }
    }

    #[test]
    fn rejects_object_above_store_maximum() {
        let too_big = PartLimits::S3.max_object_size + 1;
        assert_eq!(
            plan_part_size(too_big, 16 * MIB, &PartLimits::S3),
            Err(ObjectTooLarge {
                size: too_big,
                max: PartLimits::S3.max_object_size
            })
        );
        assert!(
            plan_part_size(
                PartLimits::OSS.max_object_size + 1,
                16 * MIB,
                &PartLimits::OSS
            )
            .is_err()
        );
    }

    #[test]
    fn part_count_rounds_up() {
        assert_eq!(part_count(0, 10), 1);
        assert_eq!(part_count(10, 10), 1);
        assert_eq!(part_count(11, 10), 2);
    }
}
