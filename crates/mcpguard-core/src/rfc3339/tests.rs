use super::*;

fn at(second: i64, nanosecond: i32) -> Timestamp {
    Timestamp::new(second, nanosecond).expect("in range")
}

#[test]
fn a_whole_second_is_written_without_a_fraction() {
    // 2026-12-05T02:23:21Z: the shape every annotation, condition and Event carried before.
    let whole = at(1_796_437_401, 0);
    assert_eq!(format(whole).as_deref(), Some("2026-12-05T02:23:21Z"));
    assert_eq!(
        format_seconds(whole).as_deref(),
        Some("2026-12-05T02:23:21Z")
    );
}

#[test]
fn a_fraction_is_written_without_trailing_zeros_or_dropped_to_the_second() {
    let fractional = at(1_796_437_401, 250_000_000);
    assert_eq!(
        format(fractional).as_deref(),
        Some("2026-12-05T02:23:21.25Z")
    );
    assert_eq!(
        format(at(1_796_437_401, 1)).as_deref(),
        Some("2026-12-05T02:23:21.000000001Z")
    );
    assert_eq!(
        format_seconds(fractional).as_deref(),
        Some("2026-12-05T02:23:21Z")
    );
}

#[test]
fn a_second_before_1970_is_floored_not_truncated_toward_zero() {
    // -0.5 s is in 1969-12-31T23:59:59Z, not in 1970-01-01T00:00:00Z.
    let half_before = at(0, -500_000_000);
    assert_eq!(floor_second(half_before), at(-1, 0));
    assert_eq!(
        format_seconds(half_before).as_deref(),
        Some("1969-12-31T23:59:59Z")
    );
}

#[test]
fn years_before_0_are_not_written() {
    let year_0 = parse("0000-01-01T00:00:00Z").expect("year 0");
    assert_eq!(format(year_0).as_deref(), Some("0000-01-01T00:00:00Z"));
    assert_eq!(format(year_0 - SignedDuration::from_nanos(1)), None);
    assert_eq!(format(Timestamp::MIN), None);
    assert_eq!(format_seconds(Timestamp::MIN), None);
}

#[test]
fn rfc3339_is_read_in_every_shape_it_allows() {
    let base = at(1_796_437_401, 0);
    for text in [
        "2026-12-05T02:23:21Z",
        "2026-12-05t02:23:21z",
        "2026-12-05 02:23:21Z",
        "2026-12-05_02:23:21Z",
        "2026-12-05T04:23:21+02:00",
        "2026-12-04T21:53:21-04:30",
        "2026-12-05T02:23:21-00:00",
        "2026-12-05T02:23:21.0Z",
    ] {
        assert_eq!(parse(text), Some(base), "{text}");
    }
    assert_eq!(
        parse("2026-12-05T02:23:21.25Z"),
        Some(at(1_796_437_401, 250_000_000))
    );
    // Past the ninth digit, the fraction is cut, not rounded.
    assert_eq!(
        parse("2026-12-05T02:23:21.1234567899Z"),
        Some(at(1_796_437_401, 123_456_789))
    );
    assert_eq!(
        parse("2026-12-05T02:23:21+23:59"),
        Some(at(1_796_437_401 - 86_340, 0))
    );
}

#[test]
fn anything_else_is_refused() {
    for text in [
        "",
        "2026-12-05",
        "2026-12-05T02:23Z",
        "2026-12-05T02:23:21",
        "2026-12-05T02:23:21.Z",
        "2026-12-05T02:23:21,5Z",
        "2026-12-05T02:23:21+02",
        "2026-12-05T02:23:21+0200",
        "2026-12-05T02:23:21+24:00",
        "2026-12-05T02:23:21+02:60",
        "2026-12-05T02:23:21Z ",
        " 2026-12-05T02:23:21Z",
        "2026-12-05T02:23:21Z[UTC]",
        "20261205T022321Z",
        "+2026-12-05T02:23:21Z",
        "12026-12-05T02:23:21Z",
        "2026-12-5T02:23:21Z",
        "2026-13-05T02:23:21Z",
        "2026-02-29T02:23:21Z",
        "2026-12-05T24:00:00Z",
        "2026-12-05T02:60:00Z",
        "2026-12-05T02:23:61Z",
        "2026-12-05\u{e9}02:23:21Z",
        "٢٠٢٦-12-05T02:23:21Z",
    ] {
        assert_eq!(parse(text), None, "{text:?}");
    }
}

#[test]
fn a_leap_second_reads_only_at_the_end_of_a_month_in_utc() {
    let last_of_2016 = at(1_483_228_799, 999_999_999);
    assert_eq!(parse("2016-12-31T23:59:60Z"), Some(last_of_2016));
    assert_eq!(parse("2016-12-31T23:59:60.5Z"), Some(last_of_2016));
    assert_eq!(parse("2017-01-01T01:59:60+02:00"), Some(last_of_2016));
    assert_eq!(
        parse("2016-06-30T23:59:60Z"),
        Some(at(1_467_331_199, 999_999_999))
    );
    assert_eq!(parse("2016-12-30T23:59:60Z"), None);
    assert_eq!(parse("2016-12-31T22:59:60Z"), None);
    assert_eq!(parse("2016-12-31T23:59:60+01:00"), None);
}

#[test]
fn the_far_end_of_9999_reads_as_the_last_instant() {
    assert_eq!(parse("9999-12-31T23:59:59Z"), Some(Timestamp::MAX));
    assert_eq!(parse("9999-12-31T23:59:59-23:59"), Some(Timestamp::MAX));
    assert_eq!(parse("9999-12-31T23:59:60Z"), Some(Timestamp::MAX));
    assert_eq!(
        parse("0000-01-01T00:00:00+23:59"),
        Some(at(-62_167_305_540, 0))
    );
}

#[test]
fn dates_are_read_with_an_optional_year_sign() {
    assert_eq!(
        parse_date("2026-03-01"),
        Some(jiff::civil::date(2026, 3, 1))
    );
    assert_eq!(
        parse_date("+2026-03-01"),
        Some(jiff::civil::date(2026, 3, 1))
    );
    assert_eq!(
        parse_date("-0044-03-15"),
        Some(jiff::civil::date(-44, 3, 15))
    );
    assert_eq!(
        parse_date("2024-02-29"),
        Some(jiff::civil::date(2024, 2, 29))
    );
    for text in [
        "",
        "2026-3-01",
        "26-03-01",
        "02026-03-01",
        "2026-03-01T00:00:00Z",
        "2026-03-01 ",
        "2026/03/01",
        "+-2026-03-01",
        "2026-02-29",
        "2026-00-01",
        "2026-03-00",
    ] {
        assert_eq!(parse_date(text), None, "{text:?}");
    }
}
