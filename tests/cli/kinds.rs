//! One key, one kind, from the command line: `lock`, `semaphore`, `elect`
//! and `status` on a key another kind of primitive uses in the same
//! `--collection` are bad usage (exit 64, one line naming both kinds), and
//! run nothing.

use super::*;

#[test]
fn a_key_another_kind_uses_in_the_collection_is_bad_usage() {
    let s = Scene::new();
    let ran = s.path("ran");
    let touch = format!("touch {}", ran.display());
    // A semaphore holds the key in a shared collection.
    let db = common::client().database(&s.db);
    let sem = mongoelector::MongoSemaphore::builder("k", &db, 2)
        .collection("coordination")
        .timeparanoid(false)
        .build()
        .unwrap();
    let _permit = sem.try_acquire().unwrap().expect("a permit");
    let cases: [&[&str]; 3] = [
        &["--collection", "coordination", "lock", "k", "--no-wait"],
        &[
            "--collection",
            "coordination",
            "semaphore",
            "k",
            "--permits",
            "3",
            "--no-wait",
        ],
        &["--collection", "coordination", "elect", "k"],
    ];
    for case in cases {
        let mut args = case.to_vec();
        args.extend_from_slice(&["--", "sh", "-c", &touch]);
        let mut child = s.start("kind", &args);
        let status = wait_for(&mut child, Duration::from_secs(20));
        let err = fs::read_to_string(s.path("kind.err")).unwrap();
        if case[2] == "semaphore" {
            // Same kind, other count: the count mismatch, as before.
            assert_eq!(status.code(), Some(64), "{case:?}: {err}");
            assert!(err.contains("permits"), "{case:?}: {err}");
        } else {
            assert_eq!(status.code(), Some(64), "{case:?}: {err}");
            assert!(
                err.contains("semaphore") && err.contains("lock"),
                "{case:?}: {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "{case:?}: one line: {err}");
        }
        assert!(!ran.exists(), "{case:?}: the command ran");
    }
}
