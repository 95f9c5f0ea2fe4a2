use x509_parser::time::ASN1Time;

use super::*;

fn at(second: i64, nanosecond: i32) -> Timestamp {
    Timestamp::new(second, nanosecond).expect("in range")
}

#[test]
fn every_timestamp_reaches_rcgen_unchanged() {
    for instant in [
        Timestamp::UNIX_EPOCH,
        at(1_796_437_401, 250_000_000),
        at(-1, -500_000_000),
        // The last instants of 9999 that jiff keeps, and its first, in year -9999.
        Timestamp::MAX,
        Timestamp::MIN,
    ] {
        let converted = to_rcgen_time(instant).expect("every Timestamp fits");
        assert_eq!(
            converted.unix_timestamp_nanos(),
            instant.as_nanosecond(),
            "{instant}"
        );
    }
}

#[test]
fn x509_dates_read_back_to_the_second_and_the_no_expiry_date_to_the_last_instant() {
    let read = |second: i64| from_x509_time(ASN1Time::from_timestamp(second).expect("a date"));
    assert_eq!(read(1_796_437_401), at(1_796_437_401, 0));
    assert_eq!(read(-86_400), at(-86_400, 0));
    // 9999-12-31T23:59:59Z, RFC 5280's "no well-defined expiration date".
    assert_eq!(read(253_402_300_799), Timestamp::MAX);
    assert!(read(253_402_300_799) > at(253_402_300_799 - 86_400 * 2, 0));
}

#[test]
fn a_certificate_carries_now_to_the_second_both_ways() {
    let now = at(1_796_437_401, 987_654_321);
    let ca = generate_ca(now).expect("a CA");
    let info = crate::rotation::cert_info(&ca.cert_pem).expect("parses");
    assert_eq!(info.not_before, at(1_796_437_401, 0) - BACKDATE);
    assert_eq!(info.not_after, at(1_796_437_401, 0) + CA_VALIDITY);
}
