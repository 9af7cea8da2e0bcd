//! The call's signalling queue: what we send on a leg goes out in the order
//! the core asked for it, one round trip after another, on a task of its
//! own, so the call loop never waits on the network. (The 202 to a REFER
//! leaves before the NOTIFY that follows it; the NOTIFY 200 before the BYE
//! to the referrer.) The task starts with the first thing to send: most
//! calls end with the caller's BYE and never need it, and a task and a
//! channel per call are a measurable share of a call's setup cost.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{warn, Instrument};

use super::core::Done;
use super::leg::{Leg, LegControl, OfferReply, ReferReply};
use super::shell::Finished;

/// The longest a BYE waits for its answer: a caller who vanished must not
/// hold the call task (and a drain) for the 32 s of retransmissions.
pub const BYE_WAIT: Duration = Duration::from_secs(4);

/// One thing to send.
pub enum Op {
    Refer {
        leg: Arc<dyn LegControl>,
        refer_to: String,
        user_to_user: Option<String>,
    },
    AcceptRefer(Box<dyn ReferReply>),
    RejectRefer(Box<dyn ReferReply>, u16),
    Notify {
        leg: Arc<dyn LegControl>,
        code: u16,
        terminated: bool,
    },
    AcceptOffer(Box<dyn OfferReply>, String),
    RejectOffer(Box<dyn OfferReply>, u16),
    /// Report the followed REFER's success to the referrer, then leave it.
    Retire {
        leg: Box<dyn Leg>,
        control: Arc<dyn LegControl>,
    },
    Bye(Arc<dyn LegControl>),
}

/// The queue's sending side; dropping it lets the queue finish and stop.
pub struct Signalling {
    done: mpsc::UnboundedSender<Finished>,
    /// The queue and its task, once something was sent.
    queue: OnceLock<Queue>,
}

struct Queue {
    ops: mpsc::UnboundedSender<Op>,
    task: tokio::task::JoinHandle<()>,
}

impl Signalling {
    /// A queue whose results go to `done`; its task starts on the first
    /// [`send`](Self::send).
    pub fn start(done: mpsc::UnboundedSender<Finished>) -> Signalling {
        Signalling {
            done,
            queue: OnceLock::new(),
        }
    }

    pub fn send(&self, op: Op) {
        let queue = self.queue.get_or_init(|| {
            let (ops, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(run(rx, self.done.clone()).in_current_span());
            Queue { ops, task }
        });
        // The queue lives as long as this handle: it cannot be closed here.
        let _ = queue.ops.send(op);
    }

    /// Let everything queued go out (bounded), then stop.
    pub async fn finish(self) {
        let Some(Queue { ops, mut task }) = self.queue.into_inner() else {
            return;
        };
        drop(ops);
        if tokio::time::timeout(BYE_WAIT + Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

async fn run(mut ops: mpsc::UnboundedReceiver<Op>, done: mpsc::UnboundedSender<Finished>) {
    while let Some(op) = ops.recv().await {
        match op {
            Op::Refer {
                leg,
                refer_to,
                user_to_user,
            } => {
                let result = leg
                    .refer(refer_to, user_to_user)
                    .await
                    .map_err(|e| e.to_string());
                let _ = done.send(Finished::Core(Box::new(Done::ReferSent(result))));
            }
            Op::AcceptRefer(reply) => reply.accept().await,
            Op::RejectRefer(reply, code) => reply.reject(code).await,
            Op::Notify {
                leg,
                code,
                terminated,
            } => {
                if let Err(e) = leg.notify_refer(code, terminated).await {
                    warn!(error = %e, status = code, "NOTIFY failed");
                }
            }
            Op::AcceptOffer(reply, sdp) => reply.accept(sdp).await,
            Op::RejectOffer(reply, code) => reply.reject(code).await,
            Op::Retire { leg, control } => {
                if let Err(e) = control.notify_refer(200, true).await {
                    warn!(error = %e, "NOTIFY 200 failed");
                }
                bye(control.as_ref()).await;
                drop(leg);
            }
            Op::Bye(leg) => bye(leg.as_ref()).await,
        }
    }
}

async fn bye(leg: &dyn LegControl) {
    match tokio::time::timeout(BYE_WAIT, leg.hangup()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "BYE failed"),
        Err(_) => warn!("no answer to BYE"),
    }
}
