//! `Sequencer`: puts the messages of each conversation back in seq order, once, for each user
//! of this node. Messages of one conversation committed on different nodes travel through
//! Redis independently, so seq 6 from node 2 may arrive before seq 5 from node 3.
//!
//! Per (user, conversation) it keeps the last seq delivered. The next one is delivered at once
//! (with any held ones it releases), an old one is a duplicate and dropped, a later one is held
//! until the gap fills: by the missing message arriving, or by the caller fetching the gap from
//! storage after a short wait (`gap`, then `fill`). A user's state starts with the first message
//! after their first session opened here and goes when their last session closes.
//!
//! Bounds: at most `MAX_CONVS_PER_USER` conversations per user (past it the user's state starts
//! over) and `MAX_HELD` held messages per conversation (past it the oldest are released, gap
//! or not). Users are bounded by this node's users.

use dashmap::DashMap;
use jiebanke_chat_core::{ConvId, Message, SessionId, UserId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const MAX_CONVS_PER_USER: usize = 4096;
pub const MAX_HELD: usize = 256;

/// A message waiting for its turn, with the session that sent it (which gets no copy).
pub type Item = (Arc<Message>, Option<SessionId>);

#[derive(Default)]
struct Track {
    last: u64,
    held: BTreeMap<u64, Item>,
}

#[derive(Default)]
pub struct Sequencer {
    users: DashMap<UserId, HashMap<ConvId, Track>>,
}

/// What to do with an offered message.
#[derive(Debug)]
pub enum Verdict {
    /// Deliver these to the user, in this order (the offered one first, then released ones).
    Deliver(Vec<Item>),
    /// Held for a gap; `first` is true if it opened the gap (the caller schedules a fill).
    Held { first: bool },
    Duplicate,
}

impl Sequencer {
    pub fn offer(&self, user: UserId, item: Item) -> Verdict {
        let conv = item.0.conv;
        let seq = item.0.seq.get();
        let mut convs = self.users.entry(user).or_default();
        if convs.len() >= MAX_CONVS_PER_USER && !convs.contains_key(&conv) {
            convs.clear();
        }
        let track = match convs.get_mut(&conv) {
            Some(t) => t,
            None => {
                convs.insert(conv, Track { last: seq, held: BTreeMap::new() });
                return Verdict::Deliver(vec![item]);
            }
        };
        if seq <= track.last || track.held.contains_key(&seq) {
            return Verdict::Duplicate;
        }
        if seq == track.last + 1 {
            track.last = seq;
            let mut out = vec![item];
            release(track, &mut out);
            return Verdict::Deliver(out);
        }
        let first = track.held.is_empty();
        track.held.insert(seq, item);
        if track.held.len() > MAX_HELD {
            // Give up on the gap: deliver from the oldest held on.
            let mut out = Vec::new();
            skip_gap(track, &mut out);
            return Verdict::Deliver(out);
        }
        Verdict::Held { first }
    }

    /// The open gap of (user, conv), if any: seqs `after+1 .. before` are missing.
    pub fn gap(&self, user: UserId, conv: ConvId) -> Option<(u64, u64)> {
        let convs = self.users.get(&user)?;
        let t = convs.get(&conv)?;
        t.held.keys().next().map(|first| (t.last, *first))
    }

    /// Feeds messages fetched from storage for a gap, then closes whatever gap is left (those
    /// seqs do not exist or are gone); returns what to deliver, in order.
    pub fn fill(&self, user: UserId, conv: ConvId, fetched: Vec<Arc<Message>>) -> Vec<Item> {
        let mut out = Vec::new();
        let Some(mut convs) = self.users.get_mut(&user) else { return out };
        let Some(track) = convs.get_mut(&conv) else { return out };
        for m in fetched {
            let seq = m.seq.get();
            if seq == track.last + 1 {
                track.last = seq;
                out.push((m, None));
                release(track, &mut out);
            }
        }
        if !track.held.is_empty() {
            skip_gap(track, &mut out);
        }
        out
    }

    /// The user's last session here closed.
    pub fn forget_user(&self, user: UserId) {
        self.users.remove(&user);
    }
}

/// Moves the held messages that now follow `last` into `out`.
fn release(track: &mut Track, out: &mut Vec<Item>) {
    while let Some(entry) = track.held.first_entry() {
        if *entry.key() != track.last + 1 {
            break;
        }
        track.last += 1;
        out.push(entry.remove());
    }
}

/// Delivers the oldest held message whatever precedes it, and what follows it.
fn skip_gap(track: &mut Track, out: &mut Vec<Item>) {
    if let Some((seq, item)) = track.held.pop_first() {
        track.last = seq;
        out.push(item);
        release(track, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiebanke_chat_core::{ClientMsgId, MessageBody, MessageText, Seq};

    fn msg(seq: u64) -> Item {
        (
            Arc::new(Message {
                conv: ConvId::new(1).unwrap(),
                seq: Seq::new(seq),
                from: UserId::new(1).unwrap(),
                cmid: ClientMsgId::parse(&format!("c{seq}")).unwrap(),
                ts: 0,
                body: MessageBody::Text(MessageText::parse("x").unwrap()),
            }),
            None,
        )
    }
    fn seqs(v: &Verdict) -> Vec<u64> {
        match v {
            Verdict::Deliver(items) => items.iter().map(|i| i.0.seq.get()).collect(),
            _ => vec![],
        }
    }
    const U: fn() -> UserId = || UserId::new(7).unwrap();

    #[test]
    fn in_order_passes_duplicates_drop() {
        let s = Sequencer::default();
        assert_eq!(seqs(&s.offer(U(), msg(4))), vec![4], "the first one sets the start");
        assert_eq!(seqs(&s.offer(U(), msg(5))), vec![5]);
        assert!(matches!(s.offer(U(), msg(5)), Verdict::Duplicate));
        assert!(matches!(s.offer(U(), msg(3)), Verdict::Duplicate));
    }

    #[test]
    fn out_of_order_is_held_until_the_gap_fills() {
        let s = Sequencer::default();
        s.offer(U(), msg(1));
        assert!(matches!(s.offer(U(), msg(3)), Verdict::Held { first: true }));
        assert!(matches!(s.offer(U(), msg(4)), Verdict::Held { first: false }));
        assert_eq!(s.gap(U(), ConvId::new(1).unwrap()), Some((1, 3)));
        assert_eq!(seqs(&s.offer(U(), msg(2))), vec![2, 3, 4]);
        assert_eq!(s.gap(U(), ConvId::new(1).unwrap()), None);
    }

    #[test]
    fn a_gap_is_filled_from_storage_or_skipped() {
        let s = Sequencer::default();
        let c = ConvId::new(1).unwrap();
        s.offer(U(), msg(1));
        s.offer(U(), msg(4));
        let out = s.fill(U(), c, vec![msg(2).0, msg(3).0]);
        assert_eq!(out.iter().map(|i| i.0.seq.get()).collect::<Vec<_>>(), vec![2, 3, 4]);
        s.offer(U(), msg(7));
        let out = s.fill(U(), c, vec![]);
        assert_eq!(out.iter().map(|i| i.0.seq.get()).collect::<Vec<_>>(), vec![7], "nothing found: skip ahead");
        assert!(matches!(s.offer(U(), msg(6)), Verdict::Duplicate));
    }

    #[test]
    fn too_many_held_releases_them() {
        let s = Sequencer::default();
        s.offer(U(), msg(1));
        for i in 0..MAX_HELD as u64 {
            assert!(matches!(s.offer(U(), msg(3 + i)), Verdict::Held { .. }));
        }
        let v = s.offer(U(), msg(3 + MAX_HELD as u64));
        assert_eq!(seqs(&v).len(), MAX_HELD + 1);
    }
}
