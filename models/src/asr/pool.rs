//! A fixed pool of recognition workers fed by a bounded queue.
//!
//! Each worker thread builds its own engine state once (a whisper state of
//! ~190 MB, a PocketSphinx decoder) and keeps it for every request: states
//! are never created per call. Submitting never blocks: when
//! `queue` requests already wait it fails with [`AsrError::Busy`], which the
//! engine turns into a fallback prompt. A request whose caller stopped
//! waiting (ticket dropped or timed out) or that waited past `max_wait` is
//! skipped, so a backlog drains instead of burning CPU on answers nobody
//! will hear.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{AsrError, AsrRequest, Transcript};
use crate::ModelError;

/// Pool size and queue bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads, each with its own engine state.
    pub workers: usize,
    /// Requests that may wait for a worker; more are refused with `Busy`.
    pub queue: usize,
    /// A request still queued after this long is dropped with `Timeout`.
    pub max_wait: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 1,
            queue: 4,
            max_wait: Duration::from_secs(3),
        }
    }
}

/// A snapshot of a pool's load and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub workers: usize,
    pub queue_capacity: usize,
    /// Requests waiting now.
    pub queued: usize,
    /// Workers recognising now.
    pub busy: usize,
    /// Most workers ever busy at once.
    pub max_busy: usize,
    /// Most requests ever waiting at once.
    pub max_queued: usize,
    pub completed: u64,
    /// Refused because the queue was full.
    pub rejected: u64,
    /// Dropped because nobody waited any more or `max_wait` passed.
    pub expired: u64,
}

/// What a worker produces for one request (the pool adds the timings).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Heard {
    pub text: String,
    pub tag: Option<String>,
    pub confidence: Option<f32>,
}

/// One worker's engine state; lives on its thread.
pub(crate) trait Worker {
    fn recognize(&mut self, request: &AsrRequest) -> Result<Heard, AsrError>;
}

#[derive(Default)]
struct SlotState {
    result: Option<Result<Transcript, AsrError>>,
    waker: Option<Waker>,
    abandoned: bool,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    ready: Condvar,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fulfil(&self, result: Result<Transcript, AsrError>) {
        let waker = {
            let mut s = self.lock();
            s.result = Some(result);
            s.waker.take()
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The pending result of a submitted request: [`Ticket::wait`] blocks with
/// a timeout; `.await` works in async code. Dropping it abandons the request.
pub struct Ticket {
    slot: Arc<Slot>,
    engine: &'static str,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("engine", &self.engine)
            .finish()
    }
}

impl Ticket {
    /// Blocks until the transcript is ready or `timeout` passes.
    pub fn wait(self, timeout: Duration) -> Result<Transcript, AsrError> {
        let deadline = Instant::now() + timeout;
        let mut s = self.slot.lock();
        loop {
            if let Some(r) = s.result.take() {
                return r;
            }
            let now = Instant::now();
            if now >= deadline {
                s.abandoned = true;
                return Err(AsrError::Timeout {
                    engine: self.engine,
                    waited: timeout,
                });
            }
            s = self
                .slot
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The result if it is ready.
    pub fn try_take(&mut self) -> Option<Result<Transcript, AsrError>> {
        self.slot.lock().result.take()
    }
}

impl Future for Ticket {
    type Output = Result<Transcript, AsrError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.slot.lock();
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.slot.lock().abandoned = true;
    }
}

struct Job {
    request: AsrRequest,
    slot: Arc<Slot>,
    submitted: Instant,
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    busy: AtomicUsize,
    max_busy: AtomicUsize,
    max_queued: AtomicUsize,
    completed: AtomicU64,
    rejected: AtomicU64,
    expired: AtomicU64,
}

/// The pool. Dropping it stops the workers after their current request.
pub(crate) struct WorkerPool {
    engine: &'static str,
    config: PoolConfig,
    tx: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl WorkerPool {
    /// Starts `config.workers` threads, each building its state with
    /// `factory(index)`; returns when all are ready, or the first error.
    pub(crate) fn start<W, F>(
        engine: &'static str,
        config: PoolConfig,
        factory: F,
    ) -> Result<Self, ModelError>
    where
        W: Worker,
        F: Fn(usize) -> Result<W, ModelError> + Send + Sync + 'static,
    {
        if config.workers == 0 {
            return Err(ModelError::Config(format!(
                "{engine}: workers must be at least 1"
            )));
        }
        if config.queue == 0 {
            return Err(ModelError::Config(format!(
                "{engine}: queue must be at least 1"
            )));
        }
        // Room for every reserved request (see `submit`).
        let (tx, rx) = mpsc::sync_channel::<Job>(config.queue + config.workers);
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        let factory = Arc::new(factory);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), ModelError>>();
        let mut threads = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let rx = rx.clone();
            let counters = counters.clone();
            let factory = factory.clone();
            let ready = ready_tx.clone();
            let max_wait = config.max_wait;
            let handle = std::thread::Builder::new()
                .name(format!("vb-asr-{engine}-{i}"))
                .spawn(move || {
                    // Recognition must never take the CPU from the calls'
                    // media and signalling (see `background`).
                    crate::background::lower_this_thread();
                    match factory(i) {
                        Ok(worker) => {
                            let _ = ready.send(Ok(()));
                            drop(ready);
                            run_worker(engine, worker, &rx, &counters, max_wait);
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                })
                .map_err(|e| {
                    ModelError::Config(format!("{engine}: cannot start a worker thread: {e}"))
                })?;
            threads.push(handle);
        }
        drop(ready_tx);
        let pool = WorkerPool {
            engine,
            config,
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            counters,
        };
        for _ in 0..pool.config.workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(ModelError::Config(format!(
                        "{engine}: a worker thread died at start"
                    )))
                }
            }
        }
        Ok(pool)
    }

    pub(crate) fn submit(&self, request: AsrRequest) -> Result<Ticket, AsrError> {
        let slot = Arc::new(Slot::default());
        let job = Job {
            request,
            slot: slot.clone(),
            submitted: Instant::now(),
        };
        let guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let tx = guard.as_ref().ok_or(AsrError::Stopped(self.engine))?;
        // The bound is this counter, not the channel's capacity: a worker
        // frees a channel slot on `recv` before it decrements `queued`, so
        // the channel alone would briefly admit one request too many.
        let reserved = self
            .counters
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q < self.config.queue).then_some(q + 1)
            });
        let q = match reserved {
            Ok(before) => before + 1,
            Err(_) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(AsrError::Busy {
                    engine: self.engine,
                    queue: self.config.queue,
                });
            }
        };
        match tx.try_send(job) {
            Ok(()) => {
                self.counters.max_queued.fetch_max(q, Ordering::SeqCst);
                Ok(Ticket {
                    slot,
                    engine: self.engine,
                })
            }
            Err(TrySendError::Full(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::SeqCst);
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                Err(AsrError::Busy {
                    engine: self.engine,
                    queue: self.config.queue,
                })
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::SeqCst);
                Err(AsrError::Stopped(self.engine))
            }
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let c = &self.counters;
        PoolStats {
            workers: self.config.workers,
            queue_capacity: self.config.queue,
            queued: c.queued.load(Ordering::SeqCst),
            busy: c.busy.load(Ordering::SeqCst),
            max_busy: c.max_busy.load(Ordering::SeqCst),
            max_queued: c.max_queued.load(Ordering::SeqCst),
            completed: c.completed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
        }
    }
}

fn run_worker<W: Worker>(
    engine: &'static str,
    mut worker: W,
    rx: &Mutex<Receiver<Job>>,
    counters: &Counters,
    max_wait: Duration,
) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return, // pool dropped
            }
        };
        counters.queued.fetch_sub(1, Ordering::SeqCst);
        let queued = job.submitted.elapsed();
        if job.slot.lock().abandoned || queued > max_wait {
            counters.expired.fetch_add(1, Ordering::Relaxed);
            job.slot.fulfil(Err(AsrError::Timeout {
                engine,
                waited: queued,
            }));
            continue;
        }
        let busy = counters.busy.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_busy.fetch_max(busy, Ordering::SeqCst);
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            worker.recognize(&job.request)
        }))
        .unwrap_or_else(|_| {
            Err(AsrError::Engine {
                engine,
                reason: "recogniser panicked".into(),
            })
        });
        let processing = started.elapsed();
        counters.busy.fetch_sub(1, Ordering::SeqCst);
        counters.completed.fetch_add(1, Ordering::Relaxed);
        let rate = job.request.sample_rate.max(1);
        let audio = Duration::from_secs_f64(job.request.audio.len() as f64 / f64::from(rate));
        job.slot.fulfil(result.map(|h| Transcript {
            text: h.text,
            engine,
            tag: h.tag,
            confidence: h.confidence,
            audio,
            queued,
            processing,
        }));
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Language;

    struct Sleepy(Duration);
    impl Worker for Sleepy {
        fn recognize(&mut self, r: &AsrRequest) -> Result<Heard, AsrError> {
            std::thread::sleep(self.0);
            Ok(Heard {
                text: format!("{} samples", r.audio.len()),
                tag: None,
                confidence: None,
            })
        }
    }

    fn req() -> AsrRequest {
        AsrRequest {
            audio: vec![0; 800],
            sample_rate: 8000,
            language: Language::En,
            grammar: None,
        }
    }

    #[test]
    fn bounded_queue_refuses_when_full_and_drains() {
        let cfg = PoolConfig {
            workers: 2,
            queue: 3,
            max_wait: Duration::from_secs(10),
        };
        let pool =
            WorkerPool::start("test", cfg, |_| Ok(Sleepy(Duration::from_millis(100)))).unwrap();
        let mut tickets = Vec::new();
        let mut busy = 0;
        for _ in 0..10 {
            match pool.submit(req()) {
                Ok(t) => tickets.push(t),
                Err(AsrError::Busy { queue: 3, .. }) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        // 2 running + 3 queued at most; fewer when a worker had not picked up yet.
        assert!((3..=5).contains(&tickets.len()), "{}", tickets.len());
        assert_eq!(busy, 10 - tickets.len());
        for t in tickets {
            let tr = t.wait(Duration::from_secs(5)).unwrap();
            assert_eq!(tr.text, "800 samples");
            assert_eq!(tr.audio, Duration::from_millis(100));
        }
        let s = pool.stats();
        assert!(s.max_busy <= 2 && s.max_queued <= 3, "{s:?}");
        assert_eq!(s.rejected, busy as u64);
    }

    #[test]
    fn abandoned_requests_are_skipped() {
        let cfg = PoolConfig {
            workers: 1,
            queue: 4,
            max_wait: Duration::from_secs(10),
        };
        let pool =
            WorkerPool::start("test", cfg, |_| Ok(Sleepy(Duration::from_millis(80)))).unwrap();
        let first = pool.submit(req()).unwrap();
        let second = pool.submit(req()).unwrap();
        assert!(matches!(
            second.wait(Duration::from_millis(10)),
            Err(AsrError::Timeout { .. })
        ));
        first.wait(Duration::from_secs(2)).unwrap();
        let third = pool.submit(req()).unwrap();
        third.wait(Duration::from_secs(2)).unwrap();
        assert_eq!(pool.stats().expired, 1);
        assert_eq!(pool.stats().completed, 2);
    }

    #[test]
    fn failing_factory_fails_start() {
        let r = WorkerPool::start::<Sleepy, _>("test", PoolConfig::default(), |i| {
            Err(ModelError::Config(format!("worker {i} cannot start")))
        });
        assert!(r.is_err());
    }
}
