//! The staff dashboard: counts of the platform, for today in the business zone
//! (`JBK_TIMEZONE`). Daily active users are the accounts that opened a session or logged in
//! today (each node marks a user once a day, `ActivityTracker`); online sessions are counted
//! across every live node (in cluster mode from what each node publishes with its heartbeat).

use crate::error::Result;
use crate::ids::UserId;
use crate::moderation::ModerationService;
use async_trait::async_trait;
use std::sync::Arc;

/// The counts the database knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DashboardCounts {
    /// Accounts not erased (staff accounts not counted).
    pub users: u64,
    pub new_users_today: u64,
    pub daily_active_users: u64,
    pub messages_today: u64,
    /// Active merchants.
    pub merchants: u64,
    pub pending_applications: u64,
    pub open_leads: u64,
    pub open_moderation: u64,
    /// Orders placed today (flowers and claims).
    pub orders_today: u64,
    /// The gross merchandise value of today: the amounts of orders paid today, fen (late
    /// payments, which are given back, not counted).
    pub gmv_today_fen: u64,
}

/// The dashboard as staff see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// Today, `YYYY-MM-DD` in the business zone.
    pub day: String,
    pub counts: DashboardCounts,
    pub online_sessions: u64,
}

#[async_trait]
pub trait DashboardStore: Send + Sync + 'static {
    /// The counts, "today" being from `day_start` (ms) and the business day `day`.
    async fn dashboard_counts(&self, day_start: i64, day: i64) -> Result<DashboardCounts>;
    /// Records that `user` was active on business day `day` (no change if it was already).
    async fn mark_active(&self, user: UserId, day: i64) -> Result<()>;
}

/// Sessions open now on every node.
#[async_trait]
pub trait OnlineSessions: Send + Sync + 'static {
    async fn online_sessions(&self) -> Result<u64>;
}

/// Marks users active at most once per business day per node (a set of today's users in
/// memory, cleared when the day changes), so that a session open costs a write only the first
/// time each day. Marking runs in the background: a failure is logged, never felt by the user.
pub struct ActivityTracker {
    store: Arc<dyn DashboardStore>,
    zone: crate::BusinessZone,
    today: std::sync::Mutex<(i64, std::collections::HashSet<UserId>)>,
}

/// Most users one node remembers as marked today (past it, marks are written again: harmless).
const MAX_TRACKED: usize = 1_000_000;

impl ActivityTracker {
    pub fn new(store: Arc<dyn DashboardStore>, zone: crate::BusinessZone) -> Self {
        ActivityTracker { store, zone, today: std::sync::Mutex::new((i64::MIN, Default::default())) }
    }

    /// `user` is active now.
    pub fn seen(self: &Arc<Self>, user: UserId) {
        let day = self.zone.day(crate::now_ms());
        {
            let mut t = self.today.lock().unwrap_or_else(|e| e.into_inner());
            if t.0 != day || t.1.len() >= MAX_TRACKED {
                *t = (day, Default::default());
            }
            if !t.1.insert(user) {
                return;
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.store.mark_active(user, day).await {
                tracing::warn!(error = %e, %user, "activity not recorded");
                this.today.lock().unwrap_or_else(|e| e.into_inner()).1.remove(&user);
            }
        });
    }
}

pub struct DashboardService {
    store: Arc<dyn DashboardStore>,
    online: Arc<dyn OnlineSessions>,
    moderation: Arc<ModerationService>,
    zone: crate::BusinessZone,
}

impl DashboardService {
    pub fn new(store: Arc<dyn DashboardStore>, online: Arc<dyn OnlineSessions>, moderation: Arc<ModerationService>, zone: crate::BusinessZone) -> Self {
        DashboardService { store, online, moderation, zone }
    }

    /// The dashboard (staff).
    pub async fn dashboard(&self, me: UserId) -> Result<Dashboard> {
        self.moderation.require_staff(me).await?;
        let now = crate::now_ms();
        let counts = self.store.dashboard_counts(self.zone.day_start(now), self.zone.day(now)).await?;
        let online_sessions = self.online.online_sessions().await?;
        Ok(Dashboard { day: self.zone.date(now), counts, online_sessions })
    }
}
