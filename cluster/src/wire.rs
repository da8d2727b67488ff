//! What crosses nodes through Redis: an `Envelope` naming the publishing node around one event,
//! in MessagePack with named fields (so that fields can be added without breaking older nodes).
//! These types never leave this crate; `decode` parses them back into domain values once.

use jiebanke_chat_core::matching::{Day, Destination, MatchId, MatchRequest, Proposal, TravelWindow};
use jiebanke_chat_core::ports::Event;
use jiebanke_chat_core::{ModerationStatus, Subject,
    ClientMsgId, ConvId, EventId, Message, MessageBody, MessageText, ModerationId, ModerationItem, ModerationKind, Order, OrderAlert, OrderId,
    Seq, SessionId, UserId,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The publishing node: a node ignores its own events (it delivered them locally).
    pub node: String,
    pub ev: WireEvent,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum WireEvent {
    /// `to`: the members the receiving node has sessions of (routing already applied).
    Msg { to: Vec<i64>, origin: Option<String>, conv: i64, seq: u64, from: i64, cmid: String, ts: i64, kind: String, text: String },
    Read { to: Vec<i64>, conv: i64, user: i64, seq: u64 },
    Typing { to: Vec<i64>, conv: i64, user: i64 },
    Presence { user: i64, online: bool, last_seen: Option<i64> },
    Members { conv: i64 },
    /// An order alert. `lines`, `recipient`, `deliver_on`, `slot` are absent from older nodes.
    Alert {
        alert: i64,
        created_at: i64,
        order: i64,
        merchant: i64,
        buyer: Option<i64>,
        item: String,
        amount_fen: i64,
        paid_at: i64,
        #[serde(default)]
        lines: Vec<(String, u32)>,
        #[serde(default)]
        recipient: Option<String>,
        #[serde(default)]
        deliver_on: Option<String>,
        #[serde(default)]
        slot: Option<String>,
    },
    /// A new item for the staff's live feed. `conv` and `seq` are a message subject's (0 for
    /// others); `subject_kind`/`subject_id` name any subject (absent from older nodes: a
    /// message).
    Moderation {
        id: i64,
        kind: String,
        conv: i64,
        seq: u64,
        #[serde(default)]
        subject_kind: Option<String>,
        #[serde(default)]
        subject_id: Option<String>,
        author: i64,
        reporter: Option<i64>,
        reason: String,
        words: Vec<String>,
        excerpt: String,
        created_at: i64,
    },
    /// An admin's delete, or (`recalled`) a sender's recall.
    Deleted { to: Vec<i64>, conv: i64, seq: u64, #[serde(default)] recalled: bool },
    Banned { user: i64 },
    Erased { user: i64 },
    /// A login session of `user` ended (`None`: all of them).
    LoggedOut { user: i64, session: Option<String> },
    PresenceHidden { watcher: i64, user: i64 },
    Proposal { id: u64, conv: i64, created_at: i64, from: i32, to: i32, waited: WireMatchRequest, found: WireMatchRequest },
    MatchExpired { request: WireMatchRequest },
    Reviewed { application: i64, user: i64, status: String, reason: Option<String>, at: i64 },
    /// A merchant's update of an animal, to its active claimants (user, claim).
    ClaimUpdate { update: i64, animal: i64, merchant: i64, text: String, photos: Vec<String>, created_at: i64, claims: Vec<(i64, i64)> },
}

/// A companion match request, on the bus and in the Redis match pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMatchRequest {
    pub user: i64,
    pub dest: String,
    pub from: i32,
    pub to: i32,
    pub min_days: u16,
    pub created_at: i64,
    pub expires_at: i64,
}

impl WireMatchRequest {
    pub fn from_domain(r: &MatchRequest) -> Self {
        WireMatchRequest {
            user: r.user.get(),
            dest: r.destination.as_str().to_owned(),
            from: r.window.from().days(),
            to: r.window.to().days(),
            min_days: r.min_days,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }

    pub fn into_domain(self) -> Result<MatchRequest, String> {
        Ok(MatchRequest {
            user: UserId::new(self.user).map_err(|e| e.to_string())?,
            destination: Destination::parse(&self.dest).map_err(|e| e.to_string())?,
            window: TravelWindow::stored(Day::from_days(self.from), Day::from_days(self.to)).map_err(|e| e.to_string())?,
            min_days: self.min_days,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

/// The event for the node whose sessions are `to`. `None` for events that never cross nodes.
pub fn encode(node: &str, event: &Event, to: &[UserId]) -> Option<Vec<u8>> {
    let ids = || to.iter().map(|u| u.get()).collect::<Vec<_>>();
    let ev = match event {
        Event::Message { origin, message, .. } => {
            // Only new messages travel, and they have text; a tombstone is never published.
            let MessageBody::Text(text) = &message.body else { return None };
            WireEvent::Msg {
                to: ids(),
                origin: origin.as_ref().map(|s| s.as_str().to_owned()),
                conv: message.conv.get(),
                seq: message.seq.get(),
                from: message.from.get(),
                cmid: message.cmid.as_str().to_owned(),
                ts: message.ts,
                kind: message.body.kind().to_owned(),
                text: text.as_str().to_owned(),
            }
        }
        Event::Read { conv, user, seq, .. } => WireEvent::Read { to: ids(), conv: conv.get(), user: user.get(), seq: seq.get() },
        Event::Typing { conv, user, .. } => WireEvent::Typing { to: ids(), conv: conv.get(), user: user.get() },
        Event::Presence { user, online, last_seen } => WireEvent::Presence { user: user.get(), online: *online, last_seen: *last_seen },
        Event::MembersChanged { conv } => WireEvent::Members { conv: conv.get() },
        Event::OrderAlert { alert } => WireEvent::Alert {
            alert: alert.id.get(),
            created_at: alert.created_at,
            order: alert.order.id.get(),
            merchant: alert.order.merchant.get(),
            buyer: alert.order.buyer.map(|b| b.get()),
            item: alert.order.item.clone(),
            amount_fen: alert.order.amount_fen,
            paid_at: alert.order.paid_at,
            lines: alert.order.details.lines.clone(),
            recipient: alert.order.details.recipient.clone(),
            deliver_on: alert.order.details.deliver_on.clone(),
            slot: alert.order.details.slot.clone(),
        },
        Event::Moderation { item } => WireEvent::Moderation {
            id: item.id.get(),
            kind: item.kind.as_str().to_owned(),
            conv: match item.subject {
                Subject::Message { conv, .. } => conv.get(),
                _ => 0,
            },
            seq: match item.subject {
                Subject::Message { seq, .. } => seq.get(),
                _ => 0,
            },
            subject_kind: Some(item.subject.kind().to_owned()),
            subject_id: Some(item.subject.id()),
            author: item.author.get(),
            reporter: item.reporter.map(|r| r.get()),
            reason: item.reason.clone(),
            words: item.words.clone(),
            excerpt: item.excerpt.clone(),
            created_at: item.created_at,
        },
        Event::MessageDeleted { conv, seq, recalled, .. } => WireEvent::Deleted { to: ids(), conv: conv.get(), seq: seq.get(), recalled: *recalled },
        Event::Banned { user } => WireEvent::Banned { user: user.get() },
        Event::Erased { user } => WireEvent::Erased { user: user.get() },
        Event::LoggedOut { user, session } => WireEvent::LoggedOut { user: user.get(), session: session.as_ref().map(|k| k.as_str().to_owned()) },
        Event::PresenceHidden { watcher, user } => WireEvent::PresenceHidden { watcher: watcher.get(), user: user.get() },
        Event::MatchProposal { proposal: p } => WireEvent::Proposal {
            id: p.id.get(),
            conv: p.conv.get(),
            created_at: p.created_at,
            from: p.shared.from().days(),
            to: p.shared.to().days(),
            waited: WireMatchRequest::from_domain(&p.waited),
            found: WireMatchRequest::from_domain(&p.found),
        },
        Event::MatchExpired { request } => WireEvent::MatchExpired { request: WireMatchRequest::from_domain(request) },
        Event::MerchantReviewed { notice: n } => WireEvent::Reviewed {
            application: n.application.get(),
            user: n.user.get(),
            status: n.status.clone(),
            reason: n.reason.clone(),
            at: n.at,
        },
        Event::ClaimUpdate { notice: n } => WireEvent::ClaimUpdate {
            update: n.update.id,
            animal: n.update.animal,
            merchant: n.update.merchant.get(),
            text: n.update.text.clone(),
            photos: n.update.photos.clone(),
            created_at: n.update.created_at,
            claims: n.claims.iter().map(|(u, c)| (u.get(), *c)).collect(),
        },
        Event::Resync => return None,
    };
    rmp_serde::to_vec_named(&Envelope { node: node.to_owned(), ev }).ok()
}

/// An event received from another node, parsed into domain values.
#[derive(Debug)]
pub struct Received {
    pub node: String,
    pub event: Event,
}

/// Parses a payload; `Err` names what was wrong (the payload is then dropped and counted).
pub fn decode(payload: &[u8]) -> Result<Received, String> {
    let env: Envelope = rmp_serde::from_slice(payload).map_err(|e| format!("undecodable: {e}"))?;
    let users = |v: &[i64]| -> Result<Arc<[UserId]>, String> {
        v.iter().map(|u| UserId::new(*u).map_err(|e| e.to_string())).collect::<Result<Vec<_>, _>>().map(Into::into)
    };
    let user = |u: i64| UserId::new(u).map_err(|e| e.to_string());
    let conv = |c: i64| ConvId::new(c).map_err(|e| e.to_string());
    let event = match env.ev {
        WireEvent::Msg { to, origin, conv: c, seq, from, cmid, ts, kind, text } => {
            if kind != "text" {
                return Err(format!("unknown message kind {kind}"));
            }
            Event::Message {
                members: users(&to)?,
                origin: origin.map(SessionId::new),
                message: Arc::new(Message {
                    conv: conv(c)?,
                    seq: Seq::new(seq),
                    from: user(from)?,
                    cmid: ClientMsgId::parse(&cmid).map_err(|e| e.to_string())?,
                    ts,
                    body: MessageBody::Text(MessageText::parse(&text).map_err(|e| e.to_string())?),
                }),
            }
        }
        WireEvent::Read { to, conv: c, user: u, seq } => Event::Read { members: users(&to)?, conv: conv(c)?, user: user(u)?, seq: Seq::new(seq) },
        WireEvent::Typing { to, conv: c, user: u } => Event::Typing { members: users(&to)?, conv: conv(c)?, user: user(u)? },
        WireEvent::Presence { user: u, online, last_seen } => Event::Presence { user: user(u)?, online, last_seen },
        WireEvent::Members { conv: c } => Event::MembersChanged { conv: conv(c)? },
        WireEvent::Alert { alert, created_at, order, merchant, buyer, item, amount_fen, paid_at, lines, recipient, deliver_on, slot } => {
            let merchant = user(merchant)?;
            Event::OrderAlert {
                alert: Arc::new(OrderAlert {
                    id: EventId::new(alert).map_err(|e| e.to_string())?,
                    merchant,
                    order: Order {
                        id: OrderId::new(order).map_err(|e| e.to_string())?,
                        merchant,
                        buyer: buyer.map(user).transpose()?,
                        item,
                        amount_fen,
                        paid_at,
                        details: jiebanke_chat_core::OrderDetails { lines, recipient, deliver_on, slot },
                    },
                    created_at,
                    acked: false,
                }),
            }
        }
        WireEvent::Moderation { id, kind, conv: c, seq, subject_kind, subject_id, author, reporter, reason, words, excerpt, created_at } => Event::Moderation {
            item: Arc::new(ModerationItem {
                id: ModerationId::new(id).map_err(|e| e.to_string())?,
                kind: ModerationKind::parse(&kind).map_err(|e| e.to_string())?,
                subject: match (subject_kind, subject_id) {
                    (Some(k), Some(i)) => Subject::parse(&k, &i).map_err(|e| e.to_string())?,
                    _ => Subject::Message { conv: conv(c)?, seq: Seq::new(seq) },
                },
                status: ModerationStatus::Open,
                author: user(author)?,
                reporter: reporter.map(user).transpose()?,
                reason,
                words,
                excerpt,
                created_at,
            }),
        },
        WireEvent::Deleted { to, conv: c, seq, recalled } => {
            Event::MessageDeleted { members: users(&to)?, conv: conv(c)?, seq: Seq::new(seq), recalled }
        }
        WireEvent::Banned { user: u } => Event::Banned { user: user(u)? },
        WireEvent::Erased { user: u } => Event::Erased { user: user(u)? },
        WireEvent::LoggedOut { user: u, session } => Event::LoggedOut {
            user: user(u)?,
            session: session.map(|k| jiebanke_chat_core::sessions::SessionKey::parse(&k)).transpose().map_err(|e| e.to_string())?,
        },
        WireEvent::PresenceHidden { watcher, user: u } => Event::PresenceHidden { watcher: user(watcher)?, user: user(u)? },
        WireEvent::Proposal { id, conv: c, created_at, from, to, waited, found } => Event::MatchProposal {
            proposal: Arc::new(Proposal {
                id: MatchId::from_raw(id),
                waited: waited.into_domain()?,
                found: found.into_domain()?,
                shared: TravelWindow::stored(Day::from_days(from), Day::from_days(to)).map_err(|e| e.to_string())?,
                conv: conv(c)?,
                created_at,
            }),
        },
        WireEvent::MatchExpired { request } => Event::MatchExpired { request: Arc::new(request.into_domain()?) },
        WireEvent::Reviewed { application, user: u, status, reason, at } => Event::MerchantReviewed {
            notice: Arc::new(jiebanke_chat_core::merchants::ReviewNotice {
                application: jiebanke_chat_core::merchants::RecordId::new(application).map_err(|e| e.to_string())?,
                user: user(u)?,
                status,
                reason,
                at,
            }),
        },
        WireEvent::ClaimUpdate { update, animal, merchant, text, photos, created_at, claims } => Event::ClaimUpdate {
            notice: Arc::new(jiebanke_chat_core::commerce::claims::UpdateNotice {
                update: jiebanke_chat_core::commerce::claims::AnimalUpdate { id: update, animal, merchant: user(merchant)?, text, photos, created_at },
                claims: claims.into_iter().map(|(u, c)| Ok::<_, String>((user(u)?, c))).collect::<Result<_, _>>()?,
            }),
        },
    };
    Ok(Received { node: env.node, event })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_the_trip() {
        let m = Arc::new(Message {
            conv: ConvId::new(9).unwrap(),
            seq: Seq::new(3),
            from: UserId::new(1).unwrap(),
            cmid: ClientMsgId::parse("c-1").unwrap(),
            ts: 1234,
            body: MessageBody::Text(MessageText::parse("你好").unwrap()),
        });
        let ev = Event::Message { members: vec![UserId::new(1).unwrap(), UserId::new(2).unwrap()].into(), origin: Some(SessionId::new("a-1")), message: m.clone() };
        let bytes = encode("n1", &ev, &[UserId::new(2).unwrap()]).unwrap();
        let r = decode(&bytes).unwrap();
        assert_eq!(r.node, "n1");
        match r.event {
            Event::Message { members, origin, message } => {
                assert_eq!(&*members, &[UserId::new(2).unwrap()]);
                assert_eq!(origin.unwrap().as_str(), "a-1");
                assert_eq!(*message, *m);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_proposal_survives_the_trip() {
        let req = |u: i64, from: &str| MatchRequest {
            user: UserId::new(u).unwrap(),
            destination: Destination::parse("大理").unwrap(),
            window: TravelWindow::stored(Day::parse(from).unwrap(), Day::parse("2026-12-09").unwrap()).unwrap(),
            min_days: 2,
            created_at: 5,
            expires_at: 600_005,
        };
        let p = Arc::new(Proposal {
            id: MatchId::from_raw(77),
            waited: req(1, "2026-12-01"),
            found: req(2, "2026-12-03"),
            shared: TravelWindow::stored(Day::parse("2026-12-03").unwrap(), Day::parse("2026-12-09").unwrap()).unwrap(),
            conv: ConvId::new(4).unwrap(),
            created_at: 9,
        });
        let bytes = encode("n1", &Event::MatchProposal { proposal: p.clone() }, &[UserId::new(2).unwrap()]).unwrap();
        match decode(&bytes).unwrap().event {
            Event::MatchProposal { proposal } => assert_eq!(*proposal, *p),
            other => panic!("{other:?}"),
        }
        let bytes = encode("n1", &Event::MatchExpired { request: Arc::new(req(1, "2026-12-01")) }, &[]).unwrap();
        match decode(&bytes).unwrap().event {
            Event::MatchExpired { request } => assert_eq!(*request, req(1, "2026-12-01")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_review_notice_survives_the_trip() {
        use jiebanke_chat_core::merchants::{RecordId, ReviewNotice};
        let n = ReviewNotice { application: RecordId::new(4).unwrap(), user: UserId::new(9).unwrap(), status: "rejected".into(), reason: Some("执照模糊".into()), at: 12 };
        let bytes = encode("n1", &Event::MerchantReviewed { notice: Arc::new(n.clone()) }, &[]).unwrap();
        match decode(&bytes).unwrap().event {
            Event::MerchantReviewed { notice } => assert_eq!(*notice, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_claim_update_survives_the_trip() {
        use jiebanke_chat_core::commerce::claims::{AnimalUpdate, UpdateNotice};
        let n = UpdateNotice {
            update: AnimalUpdate { id: 3, animal: 4, merchant: UserId::new(5).unwrap(), text: "剪毛了".into(), photos: vec!["/uploads/a.jpg".into()], created_at: 6 },
            claims: vec![(UserId::new(7).unwrap(), 8), (UserId::new(9).unwrap(), 10)],
        };
        let bytes = encode("n1", &Event::ClaimUpdate { notice: Arc::new(n.clone()) }, &[]).unwrap();
        match decode(&bytes).unwrap().event {
            Event::ClaimUpdate { notice } => assert_eq!(*notice, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"\x93\x01").is_err());
        let bad = rmp_serde::to_vec_named(&Envelope { node: "n".into(), ev: WireEvent::Members { conv: -5 } }).unwrap();
        assert!(decode(&bad).is_err());
    }
}
