//! `LocalBus`: the in-process bus of the embedded default. Publishing calls the registered sink
//! directly on the publisher's task, so order is the publish order and nothing is queued here.

use crate::ports::{Bus, Event, EventSink};
use std::sync::{Arc, OnceLock};

#[derive(Default)]
pub struct LocalBus {
    /// Set once, when the gateway's hub exists; events published before that are dropped.
    sink: OnceLock<Arc<dyn EventSink>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
    /// Registers the one sink. A second call is ignored and returns false.
    pub fn attach(&self, sink: Arc<dyn EventSink>) -> bool {
        self.sink.set(sink).is_ok()
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: Event) {
        if let Some(sink) = self.sink.get() {
            sink.deliver(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use std::sync::Mutex;

    struct Recorder(Mutex<Vec<UserId>>);
    impl EventSink for Recorder {
        fn deliver(&self, event: &Event) {
            if let Event::Presence { user, .. } = event {
                self.0.lock().unwrap().push(*user);
            }
        }
    }

    #[test]
    fn delivers_in_publish_order() {
        let bus = LocalBus::new();
        let rec = Arc::new(Recorder(Mutex::new(vec![])));
        assert!(bus.attach(rec.clone()));
        for i in 1..=3 {
            bus.publish(Event::Presence { user: UserId::new(i).unwrap(), online: true, last_seen: None });
        }
        let got: Vec<i64> = rec.0.lock().unwrap().iter().map(|u| u.get()).collect();
        assert_eq!(got, vec![1, 2, 3]);
    }
}
