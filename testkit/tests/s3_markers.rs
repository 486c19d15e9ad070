//! S3Store as a MarkerStore against moto: conditional PutObject with `If-None-Match: *`.

use backup_bridge::storage::MarkerStore;
use backup_bridge::storage::s3::S3Store;
use bytes::Bytes;

async fn store(prefix: &str) -> S3Store {
    let bucket = testkit::aws::unique_bucket(prefix).await;
    S3Store::new(testkit::aws::s3_client(), bucket)
}

#[tokio::test]
async fn create_marker_succeeds_once_per_key() {
    let store = store("marker").await;
    let first = store
        .create_marker("alerts/fp-1", Bytes::from_static(b"first"))
        .await
        .unwrap();
    let second = store
        .create_marker("alerts/fp-1", Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert!(first, "the first call creates the marker");
    assert!(!second, "the second call finds it in place");

    let body = store.read_marker("alerts/fp-1").await.unwrap();
    assert_eq!(
        body.as_deref(),
        Some(&b"first"[..]),
        "the losing write changed nothing"
    );
}

#[tokio::test]
async fn read_and_delete_of_missing_marker_succeed() {
    let store = store("marker-missing").await;
    assert_eq!(store.read_marker("alerts/none").await.unwrap(), None);
    store.delete_marker("alerts/none").await.unwrap();
}

#[tokio::test]
async fn deleted_marker_can_be_created_again() {
    let store = store("marker-delete").await;
    assert!(
        store
            .create_marker("reports/x", Bytes::from_static(b"1"))
            .await
            .unwrap()
    );
    store.delete_marker("reports/x").await.unwrap();
    assert_eq!(store.read_marker("reports/x").await.unwrap(), None);
    assert!(
        store
            .create_marker("reports/x", Bytes::from_static(b"2"))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_marker_has_one_winner() {
    let store = store("marker-race").await;
    for round in 0..20 {
        let key = format!("alerts/race-{round}");
        let calls = (0..8).map(|writer| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                store
                    .create_marker(&key, Bytes::from(format!("writer {writer}")))
                    .await
            })
        });
        let mut winners = 0;
        for call in futures::future::join_all(calls).await {
            if call.unwrap().unwrap() {
                winners += 1;
            }
        }
        assert_eq!(
            winners, 1,
            "round {round}: {winners} calls created the marker"
        );
    }
}
