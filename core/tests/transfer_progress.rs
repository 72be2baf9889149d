//! `onProgressUpdate` invariants (SPEC §5, §6), for any sequence of chunk
//! sizes: non-decreasing, rate-limited, ending with exactly one 100 % event
//! whose written total equals the expected total.

use mpnet_core::transfer::{MultipartPlan, Progress, ProgressEvent, Segment};
use proptest::prelude::*;

/// Feeds `chunks` (cut so the sum is exactly `total` when `exact`), then
/// calls `finish`; returns every event.
fn run(total: u64, chunks: &[u64], exact: bool) -> (Vec<ProgressEvent>, u64) {
    let mut p = Progress::new(total);
    let mut events = Vec::new();
    let mut sent = 0u64;
    for &c in chunks {
        let c = if exact { c.min(total - sent) } else { c };
        sent += c;
        events.extend(p.advance(c));
        if exact && sent == total {
            break;
        }
    }
    if exact && sent < total {
        events.extend(p.advance(total - sent));
        sent = total;
    }
    events.extend(p.finish());
    assert_eq!(p.finish(), None, "finish twice reports nothing");
    assert_eq!(p.advance(1), None, "nothing after the final event");
    (events, sent)
}

fn check_common(events: &[ProgressEvent], sent: u64) -> Result<(), TestCaseError> {
    prop_assert!(!events.is_empty());
    for w in events.windows(2) {
        prop_assert!(w[0].progress <= w[1].progress, "{:?}", w);
        prop_assert!(
            w[0].total_bytes_written <= w[1].total_bytes_written,
            "{:?}",
            w
        );
    }
    let last = events.last().unwrap();
    prop_assert_eq!(last.progress, 100);
    prop_assert_eq!(last.total_bytes_written, sent);
    prop_assert_eq!(last.total_bytes_expected_to_write, sent);
    prop_assert_eq!(
        events.iter().filter(|e| e.progress == 100).count(),
        1,
        "exactly one 100 % event"
    );
    for e in events {
        prop_assert!(e.progress <= 100);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn known_total(
        total in 1u64..2_000_000,
        chunks in prop::collection::vec(0u64..50_000, 0..400),
    ) {
        let (events, sent) = run(total, &chunks, true);
        prop_assert_eq!(sent, total);
        check_common(&events, sent)?;
        prop_assert!(events.len() <= 101, "{} events", events.len());
        for w in events.windows(2) {
            prop_assert!(w[0].progress < w[1].progress, "one event per percent step: {:?}", w);
        }
        for e in &events {
            prop_assert_eq!(e.total_bytes_expected_to_write, total);
            prop_assert_eq!(u64::from(e.progress), (u128::from(e.total_bytes_written) * 100 / u128::from(total)) as u64);
        }
    }

    #[test]
    fn unknown_total(chunks in prop::collection::vec(0u64..200_000, 0..300)) {
        let (events, sent) = run(0, &chunks, false);
        check_common(&events, sent)?;
        let (last, before) = events.split_last().unwrap();
        prop_assert_eq!(last.total_bytes_expected_to_write, sent);
        for e in before {
            prop_assert_eq!(e.progress, 0);
            prop_assert_eq!(e.total_bytes_expected_to_write, 0);
        }
        // Rate limit: events (apart from the first and the final) are at
        // least UNKNOWN_STEP bytes apart.
        for w in before.windows(2) {
            prop_assert!(
                w[1].total_bytes_written - w[0].total_bytes_written
                    >= mpnet_core::transfer::progress::UNKNOWN_STEP
            );
        }
    }

    /// A body walked with the upload cursor: progress follows the bytes
    /// written and ends at 100 with the whole Content-Length.
    #[test]
    fn upload_body_progress(
        file_len in 0u64..300_000,
        steps in prop::collection::vec(1u64..40_000, 1..20),
    ) {
        let plan = MultipartPlan::new(&Default::default(), "f", "a.bin", "application/octet-stream", file_len, [3; 16]).unwrap();
        let mut cursor = plan.cursor();
        let mut progress = Progress::new(plan.content_length());
        let mut events = Vec::new();
        let mut i = 0;
        while cursor.segment() != Segment::Done {
            let want = steps[i % steps.len()];
            i += 1;
            events.extend(progress.advance(cursor.advance(want)));
        }
        prop_assert!(progress.is_done());
        check_common(&events, plan.content_length())?;
        prop_assert!(events.len() <= 101);
    }
}

#[test]
fn one_big_write_gives_one_event() {
    let mut p = Progress::new(1234);
    let e = p.advance(1234).unwrap();
    assert_eq!(
        (
            e.progress,
            e.total_bytes_written,
            e.total_bytes_expected_to_write
        ),
        (100, 1234, 1234)
    );
    assert_eq!(p.finish(), None);
}

#[test]
fn events_serialise_with_javascript_names() {
    let mut p = Progress::new(200);
    let e = p.advance(3).unwrap();
    assert_eq!(
        serde_json::to_value(e).unwrap(),
        serde_json::json!({"progress": 1, "totalBytesWritten": 3, "totalBytesExpectedToWrite": 200})
    );
}
