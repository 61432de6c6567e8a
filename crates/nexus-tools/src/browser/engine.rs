//! The shared browser and the pages of sessions: Chromium launched on first use (again if it
//! died), one isolated context per session, calls of one session taken one at a time, the
//! least recently used context closed beyond the limit, idle ones closed by a reaper task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use nexus_core::SessionId;
use serde_json::json;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cdp::{CdpError, Connection};
use super::config::BrowserSettings;
use super::guard::{self, EVENT_BUFFER, Refusals};
use super::launch::{self, BrowserProcess, LaunchError};
use super::page::Page;
use super::proxy::Proxy;
use crate::net::NetworkGuard;

/// Why an action could not get a page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("browser: {0}")]
    Cdp(#[from] CdpError),
    #[error("cannot start the browser's proxy: {0}")]
    Proxy(#[source] std::io::Error),
    #[error("all {max} browser contexts are busy; try again shortly")]
    Busy { max: usize },
    #[error("the browser tool was shut down")]
    Shut,
    #[error("starting the browser was interrupted")]
    Interrupted,
}

/// What a page needs of the running browser: its connection, its record of refusals, and
/// which launch it is.
type Handles = (Arc<Connection>, Arc<Refusals>, u64);

/// A running browser.
#[derive(Debug)]
struct Running {
    process: BrowserProcess,
    conn: Arc<Connection>,
    refusals: Arc<Refusals>,
    _guard_task: AbortOnDrop,
    _proxy: Proxy,
    generation: u64,
}

/// A task that ends with its owner.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A session's page, locked while an action runs.
#[derive(Debug)]
struct Slot {
    page: Arc<tokio::sync::Mutex<Option<Page>>>,
    last_used: Mutex<Instant>,
}

impl Slot {
    fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// A session's page, held for one action.
#[derive(Debug)]
pub(crate) struct Lease {
    page: OwnedMutexGuard<Option<Page>>,
    slot: Arc<Slot>,
}

impl Lease {
    /// The page (always open while leased).
    pub(crate) fn page(&self) -> Option<&Page> {
        self.page.as_ref()
    }

    /// Closes the page in the background (after a failure that may have left it unusable);
    /// the session's next action gets a fresh context.
    pub(crate) fn discard(mut self) {
        drop(self.page.take());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.touch();
    }
}

/// The shared browser.
#[derive(Debug)]
pub(crate) struct Engine {
    settings: BrowserSettings,
    guard: NetworkGuard,
    running: tokio::sync::Mutex<Option<Running>>,
    slots: Mutex<HashMap<SessionId, Arc<Slot>>>,
    generation: AtomicU64,
    reaper: Mutex<Option<JoinHandle<()>>>,
    shut: AtomicBool,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(reaper) = self
            .reaper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            reaper.abort();
        }
    }
}

impl Engine {
    pub(crate) fn new(settings: BrowserSettings, guard: NetworkGuard) -> Arc<Engine> {
        Arc::new(Engine {
            settings,
            guard,
            running: tokio::sync::Mutex::new(None),
            slots: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            reaper: Mutex::new(None),
            shut: AtomicBool::new(false),
        })
    }

    pub(crate) fn settings(&self) -> &BrowserSettings {
        &self.settings
    }

    pub(crate) fn guard(&self) -> &NetworkGuard {
        &self.guard
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The page of `session`, opened (and the browser launched) if needed; waits for the
    /// session's running action first. The caller bounds it with its deadline.
    pub(crate) async fn lease(self: &Arc<Self>, session: SessionId) -> Result<Lease, EngineError> {
        // Touched under the map's lock: the reaper removes only slots idle under that lock.
        let slot = {
            let mut slots = self.slots();
            let slot = Arc::clone(slots.entry(session).or_insert_with(|| {
                Arc::new(Slot {
                    page: Arc::default(),
                    last_used: Mutex::new(Instant::now()),
                })
            }));
            slot.touch();
            slot
        };
        let mut page = Arc::clone(&slot.page).lock_owned().await;
        if self.shut.load(Ordering::SeqCst) {
            return Err(EngineError::Shut);
        }
        let (conn, refusals, generation) = self.browser().await?;
        if page.as_ref().is_some_and(|p| p.generation != generation) {
            *page = None;
        }
        if page.is_none() {
            self.make_room(&slot).await?;
            let viewport = (self.settings.viewport_width, self.settings.viewport_height);
            *page = Some(Page::open(conn, refusals, generation, viewport).await?);
        }
        Ok(Lease { page, slot })
    }

    /// The running browser, launched if there is none or it died. The launch runs in a task
    /// of its own: a caller that gives up (deadline, cancellation) does not waste it, the next
    /// call finds the browser started.
    async fn browser(self: &Arc<Self>) -> Result<Handles, EngineError> {
        {
            let running = self.running.lock().await;
            if let Some(r) = running.as_ref().filter(|r| !r.conn.is_closed()) {
                return Ok((Arc::clone(&r.conn), Arc::clone(&r.refusals), r.generation));
            }
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move { engine.start().await })
            .await
            .map_err(|_| EngineError::Interrupted)?
    }

    /// Starts the browser unless one runs (started by a concurrent call).
    async fn start(self: &Arc<Self>) -> Result<Handles, EngineError> {
        let mut running = self.running.lock().await;
        // Checked under the lock shutdown takes too: no browser starts after it.
        if self.shut.load(Ordering::SeqCst) {
            return Err(EngineError::Shut);
        }
        if let Some(r) = running.as_ref() {
            if !r.conn.is_closed() {
                return Ok((Arc::clone(&r.conn), Arc::clone(&r.refusals), r.generation));
            }
            tracing::warn!(pid = r.process.pid(), "Browser died; starting it again");
        }
        if let Some(dead) = running.take() {
            let Running { process, .. } = dead;
            process.stop(Duration::ZERO).await;
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let refusals = Arc::new(Refusals::default());
        let proxy = Proxy::start(self.guard.clone(), Arc::clone(&refusals))
            .await
            .map_err(EngineError::Proxy)?;
        let flags = [
            proxy.chromium_flag(),
            // Loopback goes through the proxy too (Chromium bypasses it by default).
            "--proxy-bypass-list=<-loopback>".to_owned(),
            // WebRTC may not send UDP around the proxy.
            "--force-webrtc-ip-handling-policy=disable_non_proxied_udp".to_owned(),
        ];
        let process = launch::launch(&self.settings, &flags, self.settings.action_timeout).await?;
        let conn = Arc::new(Connection::connect(process.ws_url()).await?);
        let events = conn.subscribe(None, EVENT_BUFFER);
        guard::enable(&conn).await?;
        let guard_task = tokio::spawn(guard::run(
            Arc::clone(&conn),
            events,
            self.guard.clone(),
            Arc::clone(&refusals),
        ));
        *running = Some(Running {
            process,
            conn: Arc::clone(&conn),
            refusals: Arc::clone(&refusals),
            _guard_task: AbortOnDrop(guard_task),
            _proxy: proxy,
            generation,
        });
        self.start_reaper();
        Ok((conn, refusals, generation))
    }

    /// Closes least recently used idle pages until a new one fits under `max_contexts`.
    async fn make_room(&self, except: &Arc<Slot>) -> Result<(), EngineError> {
        loop {
            let mut open = 0;
            let mut oldest: Option<(Duration, OwnedMutexGuard<Option<Page>>)> = None;
            let others: Vec<Arc<Slot>> = self
                .slots()
                .values()
                .filter(|s| !Arc::ptr_eq(s, except))
                .cloned()
                .collect();
            for slot in others {
                match Arc::clone(&slot.page).try_lock_owned() {
                    Ok(guard) if guard.is_none() => {}
                    Ok(guard) => {
                        open += 1;
                        let idle = slot.idle_for();
                        if oldest.as_ref().is_none_or(|(d, _)| idle > *d) {
                            oldest = Some((idle, guard));
                        }
                    }
                    // Busy: an action holds it, so it is open.
                    Err(_) => open += 1,
                }
            }
            if open < self.settings.max_contexts {
                return Ok(());
            }
            let Some((_, mut guard)) = oldest else {
                return Err(EngineError::Busy {
                    max: self.settings.max_contexts,
                });
            };
            if let Some(page) = guard.take() {
                tracing::info!("Browser context closed: over max_contexts");
                page.close().await;
            }
        }
    }

    /// How many sessions have an open page.
    pub(crate) fn open_pages(&self) -> usize {
        let slots: Vec<Arc<Slot>> = self.slots().values().cloned().collect();
        slots
            .iter()
            .filter(|s| match s.page.try_lock() {
                Ok(page) => page.is_some(),
                Err(_) => true,
            })
            .count()
    }

    /// The browser's process id, while it runs.
    pub(crate) async fn pid(&self) -> Option<u32> {
        self.running.lock().await.as_ref().map(|r| r.process.pid())
    }

    fn start_reaper(self: &Arc<Self>) {
        let mut reaper = self.reaper.lock().unwrap_or_else(PoisonError::into_inner);
        if reaper.as_ref().is_some_and(|r| !r.is_finished()) {
            return;
        }
        let every = (self.settings.idle_timeout / 2)
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        let engine = Arc::downgrade(self);
        *reaper = Some(tokio::spawn(reap(engine, every)));
    }

    /// Closes every context and stops the browser; later calls fail.
    pub(crate) async fn shutdown(&self) {
        self.shut.store(true, Ordering::SeqCst);
        if let Some(reaper) = self
            .reaper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            reaper.abort();
        }
        let slots: Vec<Arc<Slot>> = self.slots().drain().map(|(_, s)| s).collect();
        for slot in slots {
            // A running action ends within its deadline; do not wait past a few seconds.
            if let Ok(mut page) =
                tokio::time::timeout(Duration::from_secs(5), slot.page.lock()).await
                && let Some(page) = page.take()
            {
                page.close().await;
            }
        }
        if let Some(running) = self.running.lock().await.take() {
            stop(running).await;
            tracing::info!("Browser stopped");
        }
    }

    /// Stops the browser when no session has a context any more (all were closed as idle);
    /// the next call starts it again.
    async fn stop_if_unused(&self) {
        let mut running = self.running.lock().await;
        // Under the browser's lock: a call that needs the browser registers its session
        // before taking that lock, so it is either seen here or starts a new browser.
        if running.is_none() || !self.slots().is_empty() {
            return;
        }
        if let Some(unused) = running.take() {
            stop(unused).await;
            tracing::info!("Browser stopped: unused");
        }
    }
}

/// Asks the browser to exit, then kills what is left of its process group.
async fn stop(running: Running) {
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        running.conn.call(None, "Browser.close", json!({})),
    )
    .await;
    let Running { process, .. } = running;
    process.stop(Duration::from_secs(3)).await;
}

/// Closes the pages of sessions idle for longer than the idle timeout, then the browser once
/// no session has a page.
async fn reap(engine: Weak<Engine>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let idle = engine.settings.idle_timeout;
        let slots: Vec<(SessionId, Arc<Slot>)> = engine
            .slots()
            .iter()
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect();
        for (session, slot) in slots {
            if slot.idle_for() < idle {
                continue;
            }
            let Ok(mut page) = Arc::clone(&slot.page).try_lock_owned() else {
                continue;
            };
            if let Some(open) = page.take() {
                tracing::info!(%session, "Browser context closed: idle");
                open.close().await;
            }
            drop(page);
            let mut slots = engine.slots();
            if slots.get(&session).is_some_and(|s| Arc::ptr_eq(s, &slot)) && slot.idle_for() >= idle
            {
                slots.remove(&session);
            }
        }
        engine.stop_if_unused().await;
    }
}
