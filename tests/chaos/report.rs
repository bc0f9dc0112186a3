//! The chaos driver's report: per-second status counts, 503 latency,
//! surviving chains, issuance during the outage, recovery time, 500s, and
//! the targets of issue 13 (each PASS or MISS).

use std::time::Duration;

use super::{ChainEnd, Kind, Record};

/// The outage, in time since the load began: `pg_ctl stop` issued and
/// done, `pg_ctl start` issued, `pg_isready` first succeeding.
pub(crate) struct Timeline {
    pub stop: Duration,
    pub stopped: Duration,
    pub start: Duration,
    pub ready: Duration,
}

/// The status columns of the per-second table; anything else is "other".
const COLUMNS: [u16; 6] = [200, 400, 401, 429, 500, 503];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The q-quantile (nearest rank) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Seconds relative to the stop, rounded down (negative during warm-up).
fn second(t: Duration, stop: Duration) -> i64 {
    (t.as_secs_f64() - stop.as_secs_f64()).floor() as i64
}

fn table(t: &Timeline, records: &[Record]) {
    let first = records
        .iter()
        .map(|r| second(r.end, t.stop))
        .min()
        .unwrap_or(0);
    let last = records
        .iter()
        .map(|r| second(r.end, t.stop))
        .max()
        .unwrap_or(0);
    println!("answers per second (t: seconds since PostgreSQL was stopped, by answer time)");
    print!("{:>5}", "t");
    for c in COLUMNS {
        print!("{c:>7}");
    }
    println!("{:>7}", "other");
    for s in first..=last {
        let mut counts = [0usize; COLUMNS.len() + 1];
        for r in records.iter().filter(|r| second(r.end, t.stop) == s) {
            let col = COLUMNS.iter().position(|&c| c == r.status);
            counts[col.unwrap_or(COLUMNS.len())] += 1;
        }
        print!("{s:>5}");
        for n in counts {
            print!("{n:>7}");
        }
        let marks = [
            (t.stop, "pg_ctl stop -m fast"),
            (t.start, "pg_ctl start"),
            (t.ready, "pg_isready ok"),
        ];
        let here: Vec<_> = marks
            .iter()
            .filter(|(m, _)| second(*m, t.stop) == s)
            .map(|m| m.1)
            .collect();
        println!("  {}", here.join(", "));
    }
}

/// One target: prints it, returns 1 when missed.
fn target(ok: bool, what: &str) -> usize {
    println!("  {} {what}", if ok { "PASS" } else { "MISS" });
    usize::from(!ok)
}

/// Prints the report; returns the number of targets missed.
pub(crate) fn print(
    t: &Timeline,
    records: &[Record],
    ends: &[ChainEnd],
    errors_500: &[String],
) -> usize {
    table(t, records);
    println!();
    println!(
        "PostgreSQL stopped at +{:.2} s (stop took {:.0} ms), started at +{:.2} s, pg_isready at +{:.2} s",
        t.stop.as_secs_f64(),
        ms(t.stopped - t.stop),
        t.start.as_secs_f64(),
        t.ready.as_secs_f64()
    );

    // 503 latency, from one second after the stop.
    let from = t.stop + Duration::from_secs(1);
    let mut lat: Vec<f64> = records
        .iter()
        .filter(|r| r.status == 503 && r.start >= from)
        .map(|r| ms(r.end - r.start))
        .collect();
    lat.sort_by(f64::total_cmp);
    let p99 = if lat.is_empty() {
        0.0
    } else {
        quantile(&lat, 0.99)
    };
    if lat.is_empty() {
        println!("503 answers from 1 s after the stop: none");
    } else {
        println!(
            "503 answers from 1 s after the stop: {}, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            quantile(&lat, 0.5),
            p99,
            lat[lat.len() - 1]
        );
    }

    // Every answer to a request sent while PostgreSQL was down (from 1 s
    // after the stop): how long a request waited, whatever it got.
    let mut waited: Vec<f64> = records
        .iter()
        .filter(|r| r.start >= from && r.start < t.start)
        .map(|r| ms(r.end - r.start))
        .collect();
    waited.sort_by(f64::total_cmp);
    if !waited.is_empty() {
        println!(
            "all answers to requests sent from 1 s after the stop to the start: {}, latency p50 {:.1} ms, p99 {:.1} ms",
            waited.len(),
            quantile(&waited, 0.5),
            quantile(&waited, 0.99)
        );
    }

    // Chains: alive, with a 200 once PostgreSQL was back.
    let mut survived = 0;
    for (i, end) in ends.iter().enumerate() {
        match end {
            ChainEnd::Died { at, reason } => {
                println!("chain {i} DIED at +{:.2} s: {reason}", at.as_secs_f64());
            }
            ChainEnd::Alive { rotations, last_ok } if last_ok.is_some_and(|l| l > t.ready) => {
                survived += 1;
                println!("chain {i} survived: {rotations} rotations");
            }
            ChainEnd::Alive { rotations, .. } => {
                println!("chain {i} STUCK: {rotations} rotations, none after PostgreSQL was back");
            }
        }
    }
    println!("chains survived: {survived} of {}", ends.len());

    // client_credentials tokens issued while PostgreSQL was down.
    let issued: Vec<&Record> = records
        .iter()
        .filter(|r| r.kind == Kind::ClientCredentials && r.status == 200)
        .filter(|r| r.start >= t.stopped && r.end <= t.start)
        .collect();
    let first_full = second(t.stopped, t.stop) + 1;
    let last_full = second(t.start, t.stop) - 1;
    let silent: Vec<i64> = (first_full..=last_full)
        .filter(|&s| !issued.iter().any(|r| second(r.end, t.stop) == s))
        .collect();
    println!(
        "client_credentials tokens issued during the outage: {} (seconds without one: {})",
        issued.len(),
        if silent.is_empty() {
            "none".to_owned()
        } else {
            format!("{silent:?}")
        }
    );

    // Recovery: the first refresh answered 200 after the start command.
    let back = records
        .iter()
        .filter(|r| r.kind == Kind::Refresh && r.status == 200 && r.end >= t.start)
        .map(|r| r.end)
        .min();
    let recovery = back.map(|b| b.saturating_sub(t.ready));
    match recovery {
        Some(d) => println!("first 200 refresh after pg_isready: {:.0} ms", ms(d)),
        None => println!("first 200 refresh after pg_isready: never"),
    }

    println!("500 answers: {}", errors_500.len());
    for line in errors_500.iter().take(10) {
        println!("  {line}");
    }

    println!();
    println!("targets:");
    let mut missed = target(survived == ends.len(), "every refresh chain survives");
    missed += target(errors_500.is_empty(), "zero 500s");
    missed += target(p99 < 50.0, "503 p99 under 50 ms");
    missed += target(
        silent.is_empty(),
        "client_credentials issuance continues through the outage",
    );
    missed += target(
        recovery.is_some_and(|d| d < Duration::from_secs(1)),
        "traffic back within 1 s",
    );
    missed
}
