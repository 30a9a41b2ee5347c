//! Go `time.ParseDuration` text (`30s`, `1m30s`, `1.5h`, `250ms`), the format the original's
//! `interval` and `initialDelay` fields use; the CRD checks the shape, this gives the value.

use jiff::SignedDuration;

/// The longest `interval` or `initialDelay`: 720h, 30 days. Longer ones are refused when a
/// template or run is checked (and by the CRD), so a hook cannot schedule its next
/// measurement past what time arithmetic can hold; nobody waits a month for a gate.
pub const MAX: SignedDuration = SignedDuration::from_hours(720);
/// [`MAX`] as written in a HookTemplate.
pub const MAX_TEXT: &str = "720h";

/// Parses a Go duration; `None` when the text is not one (or is negative, or overflows).
pub fn parse(text: &str) -> Option<SignedDuration> {
    if text == "0" {
        return Some(SignedDuration::ZERO);
    }
    let mut rest = text;
    let mut total: i128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit: i128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(nanos_per_unit)?;
        let mut scale = nanos_per_unit;
        for digit in fraction.chars() {
            scale /= 10;
            part += i128::from(digit.to_digit(10)?) * scale;
        }
        total = total.checked_add(part)?;
        rest = tail;
    }
    let secs = i64::try_from(total / 1_000_000_000).ok()?;
    Some(SignedDuration::new(secs, (total % 1_000_000_000) as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse(s).map(|d: SignedDuration| d.as_millis());
        assert_eq!(d("30s"), Some(30_000));
        assert_eq!(d("1m30s"), Some(90_000));
        assert_eq!(d("1.5h"), Some(5_400_000));
        assert_eq!(d("250ms"), Some(250));
        assert_eq!(d("0"), Some(0));
        assert_eq!(d(".5s"), Some(500));
        assert_eq!(parse("10us"), Some(SignedDuration::from_micros(10)));
    }

    #[test]
    fn not_durations() {
        for text in ["", "30", "s", "1d", "-1s", "1.2.3s", "ten s"] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
