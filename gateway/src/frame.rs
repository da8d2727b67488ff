//! Wire frames: what clients send (`ClientFrame`) and what the server sends (`ServerFrame`),
//! and the two codecs (`jbk.v1.json` text frames, `jbk.v1.msgpack` binary frames) that carry
//! the same envelope. Conversion to domain types happens here and nowhere else.

use crate::strict;
use jiebanke_chat_core as core;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes};
use bytes::Bytes;

pub const PROTO_JSON: &str = "jbk.v1.json";
pub const PROTO_MSGPACK: &str = "jbk.v1.msgpack";

/// The encoding a session negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    MsgPack,
}

impl Codec {
    pub fn from_protocol(p: &str) -> Option<Codec> {
        match p {
            PROTO_JSON => Some(Codec::Json),
            PROTO_MSGPACK => Some(Codec::MsgPack),
            _ => None,
        }
    }
    pub fn protocol(self) -> &'static str {
        match self {
            Codec::Json => PROTO_JSON,
            Codec::MsgPack => PROTO_MSGPACK,
        }
    }
}

/// A request id chosen by the client and echoed back: a non-negative integer or a string of at
/// most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReqId {
    Num(u64),
    Str(String),
}

impl ReqId {
    fn valid(&self) -> bool {
        match self {
            ReqId::Num(_) => true,
            ReqId::Str(s) => s.len() <= 64,
        }
    }
}

/// An id as the wire carries it: a decimal string (numbers are accepted too).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum WireId {
    Str(String),
    Num(u64),
}

/// The largest id a client may send as a number (JavaScript's safe integers).
pub const MAX_NUMERIC_ID: u64 = 1 << 53;

impl WireId {
    fn text(&self) -> Result<String, core::CoreError> {
        match self {
            WireId::Str(s) => Ok(s.clone()),
            WireId::Num(n) if *n <= MAX_NUMERIC_ID => Ok(n.to_string()),
            WireId::Num(_) => Err(core::CoreError::invalid("an id sent as a number must be at most 2^53; send larger ids as strings")),
        }
    }
    pub fn user(&self) -> Result<core::UserId, core::CoreError> {
        core::UserId::parse(&self.text()?)
    }
    pub fn conv(&self) -> Result<core::ConvId, core::CoreError> {
        core::ConvId::parse(&self.text()?)
    }
    pub fn event(&self) -> Result<core::EventId, core::CoreError> {
        core::EventId::parse(&self.text()?)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireBody {
    Text { text: String },
    /// The tombstone of a message an admin deleted (history only; never sent by a client).
    Deleted,
    /// The tombstone of a message its sender recalled (history only; never sent by a client).
    Recalled,
}

impl WireBody {
    pub fn into_domain(self) -> Result<core::MessageBody, core::CoreError> {
        match self {
            WireBody::Text { text } => Ok(core::MessageBody::Text(core::MessageText::parse(&text)?)),
            WireBody::Deleted => Err(core::CoreError::invalid("a message body of kind deleted cannot be sent")),
            WireBody::Recalled => Err(core::CoreError::invalid("a message body of kind recalled cannot be sent; recall it with a recall frame")),
        }
    }
    pub fn from_domain(body: &core::MessageBody) -> Self {
        match body {
            core::MessageBody::Text(t) => WireBody::Text { text: t.as_str().to_owned() },
            core::MessageBody::Deleted => WireBody::Deleted,
            core::MessageBody::Recalled => WireBody::Recalled,
        }
    }
}

/// Every frame a client may send, named by its `type` field (read by `strict::tagged`, so the
/// enum is declared externally tagged). Unknown fields are ignored so that newer clients keep
/// working.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientFrame {
    Send { id: Option<ReqId>, conv: WireId, cmid: String, body: WireBody },
    Sync { id: Option<ReqId>, conv: WireId, #[serde(default)] after: u64, limit: Option<u32> },
    Read { id: Option<ReqId>, conv: WireId, seq: u64 },
    Typing { id: Option<ReqId>, conv: WireId },
    PresenceSubscribe { id: Option<ReqId>, users: Vec<WireId> },
    PresenceUnsubscribe { id: Option<ReqId>, users: Vec<WireId> },
    Ping { id: Option<ReqId> },
    /// A merchant confirms an order alert: it is not delivered again.
    AlertAck { id: Option<ReqId>, alert: WireId },
    /// A member reports a message to the admins.
    Report { id: Option<ReqId>, conv: WireId, seq: u64, reason: String },
    /// Look for a travel companion to `destination` between `from` and `to` (YYYY-MM-DD).
    MatchRequest { id: Option<ReqId>, destination: String, from: String, to: String, min_days: Option<u16> },
    /// Withdraw the waiting match request.
    MatchCancel { id: Option<ReqId> },
    /// The sender recalls a message of theirs within 2 minutes of sending it.
    Recall { id: Option<ReqId>, conv: WireId, seq: u64 },
}

/// The frame types a client may send, for `unknown_type` and metrics.
pub const CLIENT_TYPES: &[&str] =
    &["send", "sync", "read", "typing", "presence_subscribe", "presence_unsubscribe", "ping", "alert_ack", "report", "match_request", "match_cancel", "recall"];

impl ClientFrame {
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientFrame::Send { .. } => "send",
            ClientFrame::Sync { .. } => "sync",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::PresenceSubscribe { .. } => "presence_subscribe",
            ClientFrame::PresenceUnsubscribe { .. } => "presence_unsubscribe",
            ClientFrame::Ping { .. } => "ping",
            ClientFrame::AlertAck { .. } => "alert_ack",
            ClientFrame::Report { .. } => "report",
            ClientFrame::MatchRequest { .. } => "match_request",
            ClientFrame::MatchCancel { .. } => "match_cancel",
            ClientFrame::Recall { .. } => "recall",
        }
    }
    pub fn id(&self) -> Option<ReqId> {
        match self {
            ClientFrame::Send { id, .. }
            | ClientFrame::Sync { id, .. }
            | ClientFrame::Read { id, .. }
            | ClientFrame::Typing { id, .. }
            | ClientFrame::PresenceSubscribe { id, .. }
            | ClientFrame::PresenceUnsubscribe { id, .. }
            | ClientFrame::AlertAck { id, .. }
            | ClientFrame::Report { id, .. }
            | ClientFrame::MatchRequest { id, .. }
            | ClientFrame::Recall { id, .. }
            | ClientFrame::MatchCancel { id }
            | ClientFrame::Ping { id } => id.clone().filter(ReqId::valid),
        }
    }
}

/// Why a frame could not be decoded, with the request id when one could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub id: Option<ReqId>,
    pub code: &'static str,
    pub message: String,
}

/// Decodes one frame with the one strict parser (`strict`): the bytes become a value in either
/// codec, the value must be an object whose `type` is a string naming a frame, and the frame is
/// read from it by the strict rules (structs only from maps, tags as strings, ...).
pub fn decode(codec: Codec, data: &[u8]) -> Result<ClientFrame, DecodeError> {
    let value = match codec {
        Codec::Json => strict::json_value(data).map_err(|e| e.to_string()),
        Codec::MsgPack => strict::msgpack_value(data),
    }
    .map_err(|e| DecodeError { id: None, code: "bad_frame", message: format!("not a valid frame: {e}") })?;
    let Some(obj) = value.as_object() else {
        return Err(DecodeError { id: None, code: "bad_frame", message: "a frame must be an object".into() });
    };
    let id = obj
        .get("id")
        .and_then(|v| strict::from_value::<ReqId>(v).ok())
        .filter(ReqId::valid);
    let fail = |code: &'static str, message: String| DecodeError { id: id.clone(), code, message };
    match obj.get("type") {
        None => Err(fail("invalid", "missing field `type`".into())),
        Some(serde_json::Value::String(t)) if !CLIENT_TYPES.contains(&t.as_str()) => {
            Err(fail("unknown_type", format!("unknown frame type `{t}`")))
        }
        Some(serde_json::Value::String(_)) => strict::tagged::<ClientFrame>(&value, "type").map_err(|e| fail("invalid", e.to_string())),
        Some(_) => Err(fail("invalid", "`type` must be a string".into())),
    }
}

/// A message as the wire shows it, in `msg` and `history` frames.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WireMessage {
    pub conv: String,
    pub seq: u64,
    pub from: String,
    pub cmid: String,
    pub ts: i64,
    pub body: WireBody,
}

impl From<&core::Message> for WireMessage {
    fn from(m: &core::Message) -> Self {
        WireMessage {
            conv: m.conv.to_string(),
            seq: m.seq.get(),
            from: m.from.to_string(),
            cmid: m.cmid.as_str().to_owned(),
            ts: m.ts,
            body: WireBody::from_domain(&m.body),
        }
    }
}

/// An order as a merchant's alert shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WireOrder {
    pub id: String,
    pub merchant: String,
    pub buyer: Option<String>,
    pub item: String,
    pub amount_fen: i64,
    pub paid_at: i64,
    /// What to prepare: each line's title and quantity (empty for orders recorded by hand).
    #[serde(default)]
    pub lines: Vec<WireOrderLine>,
    /// The recipient, masked (`王* 138****5678`).
    #[serde(default)]
    pub recipient: Option<String>,
    /// The delivery day, `YYYY-MM-DD`.
    #[serde(default)]
    pub deliver_on: Option<String>,
    /// `morning`, `afternoon` or `evening`.
    #[serde(default)]
    pub slot: Option<String>,
}

/// One line of an order in an alert.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WireOrderLine {
    pub title: String,
    pub quantity: u32,
}

impl From<&core::Order> for WireOrder {
    fn from(o: &core::Order) -> Self {
        WireOrder {
            id: o.id.to_string(),
            merchant: o.merchant.to_string(),
            buyer: o.buyer.map(|b| b.to_string()),
            item: o.item.clone(),
            amount_fen: o.amount_fen,
            paid_at: o.paid_at,
            lines: o.details.lines.iter().map(|(title, quantity)| WireOrderLine { title: title.clone(), quantity: *quantity }).collect(),
            recipient: o.details.recipient.clone(),
            deliver_on: o.details.deliver_on.clone(),
            slot: o.details.slot.clone(),
        }
    }
}

/// What a moderation item is about: `kind` one of `message`, `post`, `comment`, `user`,
/// `profile`, `product`, `review`, `appeal`; `id` the subject's id (`<conv>:<seq>` for a
/// message, a user id for `user`, `profile` and `appeal`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WireSubject {
    pub kind: String,
    pub id: String,
}

/// How an item was resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WireResolution {
    /// `dismiss`, `delete`, `ban` or `unban`.
    pub action: String,
    pub by: String,
    pub at: i64,
}

/// A moderation item as staff see it, on REST and in the socket's `moderation` frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WireModerationItem {
    pub id: String,
    /// `flagged` (the banned-word filter), `report` (a user reported it) or `appeal`.
    pub kind: String,
    pub subject: WireSubject,
    /// For a message subject: its conversation and seq (`null` otherwise).
    pub conv: Option<String>,
    pub seq: Option<u64>,
    /// Whose content it is: the message's sender, the reported user, the appellant.
    pub author: String,
    pub reporter: Option<String>,
    pub reason: String,
    pub words: Vec<String>,
    pub excerpt: String,
    pub created_at: i64,
    /// `open` or `resolved`.
    pub status: String,
    pub resolution: Option<WireResolution>,
}

impl From<&core::ModerationItem> for WireModerationItem {
    fn from(m: &core::ModerationItem) -> Self {
        let (conv, seq) = match m.subject {
            core::Subject::Message { conv, seq } => (Some(conv.to_string()), Some(seq.get())),
            _ => (None, None),
        };
        let (status, resolution) = match m.status {
            core::ModerationStatus::Open => ("open", None),
            core::ModerationStatus::Resolved { action, by, at } => {
                ("resolved", Some(WireResolution { action: action.as_str().to_owned(), by: by.to_string(), at }))
            }
        };
        WireModerationItem {
            id: m.id.to_string(),
            kind: m.kind.as_str().to_owned(),
            subject: WireSubject { kind: m.subject.kind().to_owned(), id: m.subject.id() },
            conv,
            seq,
            author: m.author.to_string(),
            reporter: m.reporter.map(|r| r.to_string()),
            reason: m.reason.clone(),
            words: m.words.clone(),
            excerpt: m.excerpt.clone(),
            created_at: m.created_at,
            status: status.to_owned(),
            resolution,
        }
    }
}

/// Every frame the server sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello { user: String, session: String, heartbeat_ms: u64, max_frame_bytes: usize, protocol: String },
    Ack { id: Option<ReqId>, conv: String, cmid: String, seq: u64, ts: i64, duplicate: bool },
    Msg(WireMessage),
    History { id: Option<ReqId>, conv: String, messages: Vec<WireMessage>, more: bool },
    Read { conv: String, user: String, seq: u64 },
    Typing { conv: String, user: String },
    Presence { user: String, online: bool, last_seen: Option<i64> },
    Pong { id: Option<ReqId> },
    /// Events may have been missed (the cluster bus was interrupted): sync every conversation.
    Resync,
    /// A paid order for this merchant; answer with `alert_ack`, or it comes again on connect.
    OrderAlert { alert: String, order: WireOrder, created_at: i64 },
    AlertAcked { id: Option<ReqId>, alert: String },
    /// A flagged or reported message, to admin sessions.
    Moderation { item: WireModerationItem },
    /// The answer to `report`: the moderation item made of it.
    Reported { id: Option<ReqId>, item: String },
    /// An admin deleted this message: show a tombstone in its place.
    MsgDeleted { conv: String, seq: u64 },
    /// A message was recalled by its sender. `id` is set on the reply to the sender's `recall`.
    MsgRecalled {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<ReqId>,
        conv: String,
        seq: u64,
    },
    /// The answer to `match_request`: waiting until `expires_at`, or matched at once (the
    /// proposal comes as its own frame, to every session of both travellers).
    MatchRequested {
        id: Option<ReqId>,
        matched: bool,
        #[serde(rename = "match", skip_serializing_if = "Option::is_none", default)]
        match_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        expires_at: Option<i64>,
    },
    /// The answer to `match_cancel`: whether a request was waiting.
    MatchCancelled { id: Option<ReqId>, cancelled: bool },
    /// A companion was found: `peer` travels to `destination` on the shared days `from`..`to`;
    /// `conv` is the pair's direct conversation.
    MatchProposal {
        #[serde(rename = "match")]
        match_id: String,
        peer: String,
        destination: String,
        from: String,
        to: String,
        conv: String,
        created_at: i64,
    },
    /// The waiting request found no companion in time.
    MatchExpired { destination: String, from: String, to: String },
    /// My merchant application was reviewed: `status` `approved` (I am a merchant now, my
    /// merchant id is my user id) or `rejected` with its `reason`.
    MerchantReview {
        application: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
        at: i64,
    },
    /// The merchant posted about the animal of my active claim.
    ClaimUpdate { claim: String, update: WireAnimalUpdate },
    Error {
        id: Option<ReqId>,
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        retry_after_ms: Option<u64>,
    },
}

/// What a merchant posted about an animal (the `claim_update` frame's `update`, and each item of
/// `GET /api/v1/claims/{id}/updates`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WireAnimalUpdate {
    pub id: String,
    pub animal: String,
    pub text: String,
    pub photos: Vec<String>,
    pub created_at: i64,
}

impl From<&jiebanke_chat_core::commerce::claims::AnimalUpdate> for WireAnimalUpdate {
    fn from(u: &jiebanke_chat_core::commerce::claims::AnimalUpdate) -> Self {
        WireAnimalUpdate { id: u.id.to_string(), animal: u.animal.to_string(), text: u.text.clone(), photos: u.photos.clone(), created_at: u.created_at }
    }
}

impl ServerFrame {
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerFrame::Hello { .. } => "hello",
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Msg(_) => "msg",
            ServerFrame::History { .. } => "history",
            ServerFrame::Read { .. } => "read",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Resync => "resync",
            ServerFrame::OrderAlert { .. } => "order_alert",
            ServerFrame::AlertAcked { .. } => "alert_acked",
            ServerFrame::Moderation { .. } => "moderation",
            ServerFrame::Reported { .. } => "reported",
            ServerFrame::MsgDeleted { .. } => "msg_deleted",
            ServerFrame::MsgRecalled { .. } => "msg_recalled",
            ServerFrame::MatchRequested { .. } => "match_requested",
            ServerFrame::MatchCancelled { .. } => "match_cancelled",
            ServerFrame::MatchProposal { .. } => "match_proposal",
            ServerFrame::MatchExpired { .. } => "match_expired",
            ServerFrame::MerchantReview { .. } => "merchant_review",
            ServerFrame::ClaimUpdate { .. } => "claim_update",
            ServerFrame::Error { .. } => "error",
        }
    }

    pub fn order_alert(a: &core::OrderAlert) -> Self {
        ServerFrame::OrderAlert { alert: a.id.to_string(), order: WireOrder::from(&a.order), created_at: a.created_at }
    }

    /// The proposal as `user` (one of the pair) sees it.
    pub fn match_proposal(p: &core::matching::Proposal, user: core::UserId) -> Self {
        ServerFrame::MatchProposal {
            match_id: p.id.to_string(),
            peer: p.peer_of(user).to_string(),
            destination: p.found.destination.to_string(),
            from: p.shared.from().to_string(),
            to: p.shared.to().to_string(),
            conv: p.conv.to_string(),
            created_at: p.created_at,
        }
    }

    pub fn error(id: Option<ReqId>, code: &str, message: impl Into<String>) -> Self {
        ServerFrame::Error { id, code: code.to_owned(), message: message.into(), retry_after_ms: None }
    }
}

/// A server frame on its way to one or many sessions. Each codec's bytes are made at most once,
/// however many sessions the frame fans out to.
#[derive(Debug)]
pub struct Outbound {
    pub frame: ServerFrame,
    json: OnceLock<Utf8Bytes>,
    msgpack: OnceLock<Bytes>,
}

impl Outbound {
    pub fn new(frame: ServerFrame) -> Self {
        Outbound { frame, json: OnceLock::new(), msgpack: OnceLock::new() }
    }

    pub fn message(&self, codec: Codec) -> WsMessage {
        match codec {
            Codec::Json => WsMessage::Text(
                self.json
                    .get_or_init(|| {
                        serde_json::to_string(&self.frame)
                            .unwrap_or_else(|_| r#"{"type":"error","id":null,"code":"internal","message":"encode"}"#.into())
                            .into()
                    })
                    .clone(),
            ),
            Codec::MsgPack => WsMessage::Binary(
                self.msgpack
                    .get_or_init(|| rmp_serde::to_vec_named(&self.frame).unwrap_or_default().into())
                    .clone(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_send_in_both_codecs() {
        let json = br#"{"type":"send","id":7,"conv":"12","cmid":"c1","body":{"kind":"text","text":"hi"}}"#;
        let f = decode(Codec::Json, json).unwrap();
        assert_eq!(f.type_name(), "send");
        assert_eq!(f.id(), Some(ReqId::Num(7)));
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        let mp = rmp_serde::to_vec_named(&v).unwrap();
        let f = decode(Codec::MsgPack, &mp).unwrap();
        assert_eq!(f.type_name(), "send");
    }

    #[test]
    fn numeric_ids_are_accepted() {
        let f = decode(Codec::Json, br#"{"type":"sync","conv":12,"after":3}"#).unwrap();
        match f {
            ClientFrame::Sync { conv, after, .. } => {
                assert_eq!(conv.conv().unwrap().get(), 12);
                assert_eq!(after, 3);
            }
            _ => panic!(),
        }
    }

    #[test]
    fn errors_say_what_and_keep_the_id() {
        let e = decode(Codec::Json, b"{not json").unwrap_err();
        assert_eq!((e.code, e.id), ("bad_frame", None));
        let e = decode(Codec::Json, b"[1,2]").unwrap_err();
        assert_eq!(e.code, "bad_frame");
        let e = decode(Codec::Json, br#"{"id":"r1"}"#).unwrap_err();
        assert_eq!((e.code, e.id), ("invalid", Some(ReqId::Str("r1".into()))));
        let e = decode(Codec::Json, br#"{"type":"dance","id":3}"#).unwrap_err();
        assert_eq!((e.code, e.id), ("unknown_type", Some(ReqId::Num(3))));
        let e = decode(Codec::Json, br#"{"type":"send","id":4,"conv":"1","cmid":5}"#).unwrap_err();
        assert_eq!((e.code, e.id), ("invalid", Some(ReqId::Num(4))));
        let e = decode(Codec::Json, br#"{"type":7}"#).unwrap_err();
        assert_eq!(e.code, "invalid");
        let e = decode(Codec::MsgPack, &[0xc1]).unwrap_err();
        assert_eq!(e.code, "bad_frame");
    }

    #[test]
    fn server_frames_round_trip_both_codecs() {
        let f = ServerFrame::Ack { id: Some(ReqId::Str("x".into())), conv: "1".into(), cmid: "c".into(), seq: 3, ts: 9, duplicate: false };
        let out = Outbound::new(f.clone());
        match out.message(Codec::Json) {
            WsMessage::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(v["type"], "ack");
                assert_eq!(v["seq"], 3);
                assert_eq!(serde_json::from_value::<ServerFrame>(v).unwrap(), f);
            }
            _ => panic!("json is text"),
        }
        match out.message(Codec::MsgPack) {
            WsMessage::Binary(b) => assert_eq!(rmp_serde::from_slice::<ServerFrame>(&b).unwrap(), f),
            _ => panic!("msgpack is binary"),
        }
        let err = serde_json::to_value(ServerFrame::error(None, "invalid", "x")).unwrap();
        assert!(err["id"].is_null());
        assert!(err.get("retry_after_ms").is_none());
    }
}
