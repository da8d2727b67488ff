//! `LocalProvider`: its callbacks are WeChat Pay's in every byte that matters, so they go
//! through the one opener; its keys survive restarts, and concurrent starters agree on them.

use jiebanke_chat_core::commerce::pay::{Notice, NotifyError, PayParams, PaymentProvider, Prepay, Refund, RefundStatus};
use jiebanke_payments::local::{LocalPayment, LocalProvider, LocalRefund, LOCAL_SERIAL};
use std::path::PathBuf;

const NOW: i64 = 1_790_000_000;

/// A fresh data dir of this test's own.
fn data_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("local-pay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn paid(out_trade_no: &str) -> LocalPayment {
    LocalPayment { out_trade_no: out_trade_no.into(), transaction_id: format!("LOCAL-{out_trade_no}"), amount_total: 8800, trade_state: "SUCCESS".into() }
}

#[test]
fn a_local_payment_callback_opens_through_the_wechat_path() {
    let local = LocalProvider::load_or_create(&data_dir("round-trip")).unwrap();
    let (headers, body) = local.notification(&paid("T-1"), NOW).unwrap();
    assert_eq!(headers.serial, LOCAL_SERIAL);
    assert_eq!(headers.timestamp, NOW.to_string());
    let Notice::Transaction { out_trade_no, transaction_id, trade_state, amount_total, success_time } = local.open_notification(&headers, &body, NOW + 10).unwrap() else { panic!() };
    assert_eq!((out_trade_no.as_str(), transaction_id.as_str(), trade_state.as_str(), amount_total), ("T-1", "LOCAL-T-1", "SUCCESS", 8800));
    assert_eq!(success_time.as_deref(), Some("2026-09-21T22:13:20+08:00"));
    // The body is WeChat Pay's envelope, its resource encrypted (the ids do not show).
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(envelope["resource"]["algorithm"], "AEAD_AES_256_GCM");
    assert_eq!(envelope["resource"]["associated_data"], "transaction");
    assert_eq!(envelope["resource"]["nonce"].as_str().unwrap().len(), 12);
    assert!(!String::from_utf8_lossy(&body).contains("LOCAL-T-1"));
    // Two callbacks of one payment differ in their nonces, not in what they say.
    let (again_headers, again) = local.notification(&paid("T-1"), NOW).unwrap();
    assert_ne!((&again_headers.nonce, &again), (&headers.nonce, &body));
    assert!(matches!(local.open_notification(&again_headers, &again, NOW), Ok(Notice::Transaction { .. })));
}

#[test]
fn a_local_refund_callback_opens() {
    let local = LocalProvider::load_or_create(&data_dir("refund")).unwrap();
    let refund = LocalRefund { out_trade_no: "T-1".into(), transaction_id: "LOCAL-T-1".into(), out_refund_no: "R-1".into(), refund_fen: 3000, total_fen: 8800, refund_status: "SUCCESS".into() };
    let (headers, body) = local.refund_notification(&refund, NOW).unwrap();
    assert_eq!(local.open_notification(&headers, &body, NOW).unwrap(), Notice::Refund { out_trade_no: "T-1".into(), out_refund_no: "R-1".into(), refund_status: "SUCCESS".into(), refund_fen: 3000 });
}

#[test]
fn a_tampered_local_callback_is_refused() {
    let local = LocalProvider::load_or_create(&data_dir("tampered")).unwrap();
    let (headers, body) = local.notification(&paid("T-1"), NOW).unwrap();
    let tampered = String::from_utf8(body.clone()).unwrap().replace("TRANSACTION.SUCCESS", "TRANSACTION.SUCCESS ").into_bytes();
    assert_eq!(local.open_notification(&headers, &tampered, NOW), Err(NotifyError::BadSignature));
    assert_eq!(local.open_notification(&headers, &body, NOW + 301), Err(NotifyError::StaleTimestamp));
    // Another data dir is another platform key: its callbacks are not trusted here.
    let other = LocalProvider::load_or_create(&data_dir("tampered-other")).unwrap();
    let (headers, body) = other.notification(&paid("T-1"), NOW).unwrap();
    assert_eq!(local.open_notification(&headers, &body, NOW), Err(NotifyError::BadSignature));
}

#[test]
fn keys_persist_across_starts() {
    let dir = data_dir("persist");
    let first = LocalProvider::load_or_create(&dir).unwrap();
    let (headers, body) = first.notification(&paid("T-1"), NOW).unwrap();
    drop(first);
    let again = LocalProvider::load_or_create(&dir).unwrap();
    assert!(again.open_notification(&headers, &body, NOW).is_ok());
    #[cfg(unix)]
    for entry in std::fs::read_dir(&dir).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let entry = entry.unwrap();
        assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", entry.path());
    }
    // Only the two key files: no temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}

#[test]
fn concurrent_starters_agree_on_the_keys() {
    for round in 0..3 {
        let dir = data_dir(&format!("concurrent-{round}"));
        let starters: Vec<_> = (0..4).map(|_| std::thread::spawn({
            let dir = dir.clone();
            move || LocalProvider::load_or_create(&dir).unwrap()
        })).collect();
        let providers: Vec<LocalProvider> = starters.into_iter().map(|t| t.join().unwrap()).collect();
        // Each one's callback opens with every other: the same platform key and APIv3 key.
        for maker in &providers {
            let (headers, body) = maker.notification(&paid("T-1"), NOW).unwrap();
            for opener in &providers {
                assert!(opener.open_notification(&headers, &body, NOW).is_ok(), "round {round}");
            }
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    }
}

#[tokio::test]
async fn local_prepay_and_refund_need_no_one() {
    let local = LocalProvider::load_or_create(&data_dir("prepay")).unwrap();
    assert_eq!(local.name(), "local");
    let prepay = Prepay { out_trade_no: "T-1".into(), description: "向日葵".into(), amount_fen: 8800, payer_openid: None, expires_at: 0 };
    assert_eq!(local.prepay(&prepay).await.unwrap(), PayParams::Local { payment: "T-1".into() });
    let refund = Refund { out_trade_no: "T-1".into(), out_refund_no: "R-1".into(), reason: String::new(), refund_fen: 8800, total_fen: 8800 };
    assert_eq!(local.refund(&refund).await.unwrap(), RefundStatus::Success);
    assert_eq!(local.refund(&refund).await.unwrap(), RefundStatus::Success);
}
