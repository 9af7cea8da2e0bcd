//! The limiter in simulated time: bursts, refills, the hard limit, the
//! allowlist, the log cadence and a spoofed-source flood.

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Small limits so the arithmetic is easy to follow; nothing allowlisted.
fn config() -> RateLimitsConfig {
    RateLimitsConfig {
        enabled: true,
        invite: BucketConfig::new(2, 4),
        register: BucketConfig::new(1, 2),
        options: BucketConfig::new(5, 5),
        unauthenticated: BucketConfig::new(50, 100),
        hard_limit: BucketConfig::new(20, 40),
        allow: vec![],
        max_sources: 100,
        max_calls_per_source: 0,
    }
}

fn decisions(
    limiter: &mut RateLimiter,
    at: Instant,
    source: IpAddr,
    class: Class,
    n: usize,
) -> Vec<Decision> {
    (0..n)
        .map(|_| limiter.check(at, source, class).decision)
        .collect()
}

#[test]
fn a_burst_passes_then_503_until_the_bucket_refills() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    let a = ip("192.0.2.1");
    let got = decisions(&mut l, t0, a, Class::Invite, 6);
    assert_eq!(got[..4], [Decision::Pass; 4]);
    // One token comes back in half a second at 2/s: Retry-After rounds up.
    assert_eq!(got[4], Decision::Refuse { retry_after: 1 });
    assert_eq!(got[5], Decision::Refuse { retry_after: 1 });
    // Half a second later one token is back, and only one.
    let t1 = t0 + Duration::from_millis(500);
    assert_eq!(
        decisions(&mut l, t1, a, Class::Invite, 2),
        [Decision::Pass, Decision::Refuse { retry_after: 1 }]
    );
    // Another source has buckets of its own.
    assert_eq!(
        decisions(&mut l, t1, ip("192.0.2.2"), Class::Invite, 4),
        [Decision::Pass; 4]
    );
}

#[test]
fn a_steady_caller_at_the_rate_is_never_limited() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    let a = ip("198.51.100.7");
    // Two INVITEs a second (each with ACK and BYE) for an hour.
    for tick in 0..7200u64 {
        let at = t0 + Duration::from_millis(500 * tick);
        for class in [Class::Invite, Class::Ack, Class::Other] {
            assert_eq!(
                l.check(at, a, class).decision,
                Decision::Pass,
                "tick {tick}"
            );
        }
    }
}

#[test]
fn over_the_hard_limit_everything_is_dropped_and_only_the_excess() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    let a = ip("203.0.113.5");
    // 40 at once (the hard burst) are judged: 5 OPTIONS pass, 35 get 503.
    let first = decisions(&mut l, t0, a, Class::Options, 40);
    assert_eq!(first.iter().filter(|d| **d == Decision::Pass).count(), 5);
    assert!(first[5..]
        .iter()
        .all(|d| matches!(d, Decision::Refuse { .. })));
    // The 41st and on are dropped, responses and ACKs too.
    for class in Class::ALL {
        assert_eq!(l.check(t0, a, class).decision, Decision::Drop, "{class:?}");
    }
    // A flood at 5,000/s for ten simulated seconds: about 20/s are judged
    // (the hard rate), the rest dropped.
    let mut judged = 0;
    for i in 0..50_000u64 {
        let at = t0 + Duration::from_micros(200 * i);
        if l.check(at, a, Class::Options).decision != Decision::Drop {
            judged += 1;
        }
    }
    assert!((195..=205).contains(&judged), "{judged} judged");
}

#[test]
fn acks_and_responses_only_meet_the_hard_limit() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    let a = ip("192.0.2.30");
    // The INVITE bucket is empty, yet ACKs and responses still pass.
    decisions(&mut l, t0, a, Class::Invite, 4);
    assert!(matches!(
        l.check(t0, a, Class::Invite).decision,
        Decision::Refuse { .. }
    ));
    assert_eq!(
        decisions(&mut l, t0, a, Class::Ack, 10),
        [Decision::Pass; 10]
    );
    assert_eq!(
        decisions(&mut l, t0, a, Class::Response, 10),
        [Decision::Pass; 10]
    );
}

#[test]
fn every_request_draws_from_the_unauthenticated_bucket() {
    let t0 = Instant::now();
    let mut config = config();
    config.unauthenticated = BucketConfig::new(3, 3);
    let mut l = RateLimiter::new(&config, t0).unwrap();
    let a = ip("192.0.2.40");
    assert_eq!(
        decisions(&mut l, t0, a, Class::Other, 2),
        [Decision::Pass; 2]
    );
    assert_eq!(l.check(t0, a, Class::Invite).decision, Decision::Pass);
    // The INVITE bucket still holds 3, but the shared one is empty.
    assert!(matches!(
        l.check(t0, a, Class::Invite).decision,
        Decision::Refuse { .. }
    ));
    // A refused request took no INVITE token: after the shared bucket
    // refills, the INVITE bucket still has its three.
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(
        decisions(&mut l, t1, a, Class::Invite, 3),
        [Decision::Pass; 3]
    );
}

#[test]
fn allowlisted_sources_and_a_disabled_limiter_are_never_limited() {
    let t0 = Instant::now();
    let mut config = config();
    config.allow = vec!["10.0.0.0/8".into(), "2001:db8::1".into()];
    let mut l = RateLimiter::new(&config, t0).unwrap();
    for source in ["10.1.2.3", "::ffff:10.9.9.9", "2001:db8::1"] {
        assert_eq!(
            decisions(&mut l, t0, ip(source), Class::Invite, 1000),
            vec![Decision::Pass; 1000],
            "{source}"
        );
    }
    assert_eq!(l.tracked(), 0);
    config.allow.clear();
    config.enabled = false;
    let mut off = RateLimiter::new(&config, t0).unwrap();
    assert_eq!(
        decisions(&mut off, t0, ip("192.0.2.1"), Class::Invite, 1000),
        vec![Decision::Pass; 1000]
    );
}

#[test]
fn an_ipv4_source_is_one_source_however_it_arrives() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    decisions(&mut l, t0, ip("192.0.2.50"), Class::Invite, 4);
    assert!(matches!(
        l.check(t0, ip("::ffff:192.0.2.50"), Class::Invite).decision,
        Decision::Refuse { .. }
    ));
    assert_eq!(l.tracked(), 1);
}

#[test]
fn a_bad_allowlist_entry_is_named() {
    let mut config = config();
    config.allow = vec!["10.0.0.0/33".into()];
    let err = RateLimiter::new(&config, Instant::now()).unwrap_err();
    assert!(err.contains("10.0.0.0/33"), "{err}");
}

#[test]
fn one_log_line_per_source_per_minute_with_the_count() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    let a = ip("203.0.113.77");
    let mut lines = Vec::new();
    // 1,000 datagrams a second for three minutes and a bit.
    for i in 0..190_000u64 {
        let at = t0 + Duration::from_millis(i);
        if let Some(line) = l.check(at, a, Class::Invite).log {
            lines.push((at - t0, line));
        }
    }
    let at: Vec<u64> = lines.iter().map(|(d, _)| d.as_secs()).collect();
    assert_eq!(at, [0, 60, 120, 180]);
    assert!(lines.iter().all(|(_, line)| line.source == Some(a)));
    assert_eq!(lines[0].1.limited, 1);
    // Each later line covers the minute before it: nearly all of 60,000.
    for (_, line) in &lines[1..] {
        assert!((59_000..=60_000).contains(&line.limited), "{line:?}");
    }
    // A second source is logged on its own.
    let b = ip("203.0.113.78");
    let first = (0..100)
        .find_map(|_| l.check(t0 + Duration::from_secs(190), b, Class::Invite).log)
        .expect("a line for the second source");
    assert_eq!(first.source, Some(b));
}

#[test]
fn a_spoofed_source_flood_cannot_grow_the_table() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    let mut overflow_lines = 0;
    let mut limited = 0;
    // 200,000 INVITEs from as many addresses in two seconds.
    for i in 0..200_000u32 {
        let at = t0 + Duration::from_micros(10 * u64::from(i));
        let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let out = l.check(at, source, Class::Invite);
        if out.decision != Decision::Pass {
            limited += 1;
        }
        if let Some(line) = out.log {
            assert_eq!(line.source, None, "only the overflow bucket is limited");
            overflow_lines += 1;
        }
        assert!(l.tracked() <= 100);
    }
    // The sources beyond the table shared one bucket and were limited.
    assert!(limited > 199_000, "{limited} limited");
    assert_eq!(overflow_lines, 1);
    // Once they are quiet the table empties by itself.
    let later = t0 + Duration::from_secs(120);
    l.check(later, ip("192.0.2.1"), Class::Options);
    assert_eq!(l.tracked(), 1);
}

#[test]
fn idle_sources_are_forgotten_and_limited_ones_remembered_for_the_minute() {
    let t0 = Instant::now();
    let mut l = RateLimiter::new(&config(), t0).unwrap();
    let quiet = ip("192.0.2.60");
    let noisy = ip("192.0.2.61");
    l.check(t0, quiet, Class::Invite);
    decisions(&mut l, t0, noisy, Class::Invite, 10);
    assert_eq!(l.tracked(), 2);
    // Thirty seconds on both are refilled; the noisy one was logged and
    // stays until its minute is over, so it is not logged again sooner.
    l.check(
        t0 + Duration::from_secs(30),
        ip("192.0.2.62"),
        Class::Options,
    );
    assert_eq!(
        l.tracked(),
        2,
        "the quiet source is gone, the noisy one stays"
    );
    let again = decisions(
        &mut l,
        t0 + Duration::from_secs(31),
        noisy,
        Class::Invite,
        10,
    );
    assert!(again.iter().any(|d| matches!(d, Decision::Refuse { .. })));
    // A minute after its line, quiet again: the count since is logged
    // once, it stays another minute, then it is forgotten.
    let t2 = t0 + Duration::from_secs(61);
    l.check(t2, quiet, Class::Options);
    assert_eq!(
        l.poll_log(),
        Some(LogLine {
            source: Some(noisy),
            limited: 11
        })
    );
    assert_eq!(l.poll_log(), None);
    assert_eq!(l.tracked(), 2);
    l.check(t2 + Duration::from_secs(61), quiet, Class::Options);
    assert_eq!(l.poll_log(), None);
    assert_eq!(l.tracked(), 1, "only the quiet source, just seen");
}

#[test]
fn the_class_is_the_first_word() {
    for (datagram, class) in [
        (&b"INVITE sip:a@b SIP/2.0\r\n"[..], Class::Invite),
        (b"REGISTER sip:b SIP/2.0\r\n", Class::Register),
        (b"OPTIONS sip:b SIP/2.0\r\n", Class::Options),
        (b"ACK sip:a@b SIP/2.0\r\n", Class::Ack),
        (b"BYE sip:a@b SIP/2.0\r\n", Class::Other),
        (b"SIP/2.0 200 OK\r\n", Class::Response),
        (b"invite sip:a@b SIP/2.0\r\n", Class::Other),
        (b"INVITE", Class::Invite),
        (b"", Class::Keepalive),
        (b"\r\n\r\n", Class::Keepalive),
        (b"\xff\xfe", Class::Other),
    ] {
        assert_eq!(Class::of(datagram), class, "{datagram:?}");
    }
}

#[test]
fn the_metric_counts_by_method_and_action() {
    let m = RateLimitMetrics::default();
    m.count(Class::Invite, Decision::Refuse { retry_after: 1 });
    m.count(Class::Options, Decision::Drop);
    m.count(Class::Options, Decision::Drop);
    m.count(Class::Register, Decision::Pass);
    let text = crate::exposition::render(&std::sync::Arc::new(m));
    assert!(
        text.contains("voxbridge_sip_rate_limited_total{method=\"invite\",action=\"refused\"} 1\n")
    );
    assert!(text
        .contains("voxbridge_sip_rate_limited_total{method=\"options\",action=\"dropped\"} 2\n"));
    assert!(text
        .contains("voxbridge_sip_rate_limited_total{method=\"register\",action=\"refused\"} 0\n"));
    assert!(!text.contains("method=\"ack\",action=\"refused\""));
}

#[test]
fn a_bucket_given_in_part_keeps_its_own_defaults() {
    let yaml = "sip:\n  rate_limits:\n    invite: {rate: 50}\n    options: {burst: 7}\n";
    let c = crate::config::Config::parse(std::path::Path::new("t.yaml"), yaml).unwrap();
    let limits = c.sip.rate_limits;
    assert_eq!((limits.invite.rate, limits.invite.burst), (50, 40));
    assert_eq!((limits.options.rate, limits.options.burst), (10, 7));
    assert_eq!(limits.register, RateLimitsConfig::default().register);
    let typo = "sip:\n  rate_limits:\n    invite: {rat: 50}\n";
    assert!(crate::config::Config::parse(std::path::Path::new("t.yaml"), typo).is_err());
}
