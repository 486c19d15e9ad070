//! A CRC-64/XZ that can be saved as a plain number and resumed later, so a copy that stops at a
//! part boundary can hand its running checksum to the next Lambda invocation.
//!
//! crc64fast's `Digest` cannot be rebuilt from a value, so the running value is kept as the CRC
//! of everything before the current segment plus a crc64fast digest of the segment, and the two
//! are joined with CRC combination: crc(A ‖ B) = crc(A) · x^(8·len(B)) mod P  ⊕  crc(B). The
//! init and xorout terms cancel because CRC-64/XZ uses all ones for both.

use crate::checksum::Crc64;

/// The ECMA-182 polynomial in reflected bit order, as CRC-64/XZ uses it.
const POLYNOMIAL_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

/// The polynomial 1 (x^0) in reflected bit order: the top bit.
const ONE: u64 = 1 << 63;

/// Multiplies two polynomials modulo the CRC polynomial, both in reflected bit order.
fn multiply_mod_polynomial(a: u64, mut b: u64) -> u64 {
    let mut product = 0;
    let mut mask = ONE;
    while mask != 0 {
        if a & mask != 0 {
            product ^= b;
        }
        mask >>= 1;
        // Multiply b by x: a right shift in reflected order, reduced by the polynomial.
        b = if b & 1 != 0 {
            (b >> 1) ^ POLYNOMIAL_REFLECTED
        } else {
            b >> 1
        };
    }
    product
}

/// Returns x^(8·bytes) modulo the CRC polynomial, by square-and-multiply.
fn x_to_the_bits_of(bytes: u64) -> u64 {
    // x^8, the operator for one byte: x^1 squared three times.
    let mut power = ONE >> 1;
    for _ in 0..3 {
        power = multiply_mod_polynomial(power, power);
    }
    let mut result = ONE;
    let mut remaining = bytes;
    while remaining != 0 {
        if remaining & 1 != 0 {
            result = multiply_mod_polynomial(power, result);
        }
        power = multiply_mod_polynomial(power, power);
        remaining >>= 1;
    }
    result
}

/// Returns the CRC-64/XZ of `A ‖ B` from `crc(A)`, `crc(B)` and the length of `B` in bytes.
pub fn crc64_combine(crc_first: u64, crc_second: u64, second_len: u64) -> u64 {
    multiply_mod_polynomial(x_to_the_bits_of(second_len), crc_first) ^ crc_second
}

/// Running CRC-64/XZ that can restart from a saved value.
#[derive(Clone, Default)]
pub struct ResumableCrc64 {
    /// CRC of every byte before the current segment (0 when there were none).
    prefix: u64,
    segment: Crc64,
    segment_len: u64,
}

impl ResumableCrc64 {
    pub fn new() -> Self {
        Self::default()
    }

    /// Continues from the CRC-64 of the bytes already processed; the length of those bytes is
    /// not needed.
    pub fn resume(value: u64) -> Self {
        Self {
            prefix: value,
            ..Self::default()
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.segment.update(bytes);
        self.segment_len += bytes.len() as u64;
    }

    /// Appends `len` bytes whose CRC-64 is already known, as if they had been passed to
    /// [`ResumableCrc64::update`].
    pub fn append(&mut self, crc: u64, len: u64) {
        self.prefix = crc64_combine(self.value(), crc, len);
        self.segment = Crc64::new();
        self.segment_len = 0;
    }

    /// Returns the CRC of everything processed so far, including bytes before a resume.
    pub fn value(&self) -> u64 {
        crc64_combine(self.prefix, self.segment.value(), self.segment_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::crc64;

    const CHECK_INPUT: &[u8] = b"123456789";
    const CHECK_VALUE: u64 = 11051210869376104954;

    #[test]
    fn combine_gives_check_value_at_every_split() {
        for split in 0..=CHECK_INPUT.len() {
            let (first, second) = CHECK_INPUT.split_at(split);
            let combined = crc64_combine(crc64(first), crc64(second), second.len() as u64);
            assert_eq!(combined, CHECK_VALUE, "split at {split}");
        }
    }

    #[test]
    fn resume_gives_check_value_at_every_split() {
        for split in 0..=CHECK_INPUT.len() {
            let (first, second) = CHECK_INPUT.split_at(split);
            let mut before = ResumableCrc64::new();
            before.update(first);
            let mut after = ResumableCrc64::resume(before.value());
            after.update(second);
            assert_eq!(after.value(), CHECK_VALUE, "split at {split}");
        }
    }

    #[test]
    fn resume_twice_over_large_input_matches_one_shot() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut first = ResumableCrc64::new();
        first.update(&data[..100_000]);
        let mut second = ResumableCrc64::resume(first.value());
        second.update(&data[100_000..250_001]);
        let mut third = ResumableCrc64::resume(second.value());
        third.update(&data[250_001..]);
        assert_eq!(third.value(), crc64(&data));
    }

    #[test]
    fn append_matches_update() {
        for split in 0..=CHECK_INPUT.len() {
            let (first, second) = CHECK_INPUT.split_at(split);
            let mut running = ResumableCrc64::new();
            running.update(first);
            running.append(crc64(second), second.len() as u64);
            assert_eq!(running.value(), CHECK_VALUE, "split at {split}");
        }
        let mut appended = ResumableCrc64::resume(crc64(b"1234"));
        appended.append(crc64(b"56"), 2);
        appended.update(b"789");
        assert_eq!(appended.value(), CHECK_VALUE);
    }

    #[test]
    fn new_digest_of_nothing_is_zero() {
        assert_eq!(ResumableCrc64::new().value(), 0);
        assert_eq!(ResumableCrc64::resume(CHECK_VALUE).value(), CHECK_VALUE);
    }
}
