//! The per-call media session: a sans-IO [`MediaCore`] and the thin tokio
//! shell that runs it on one UDP socket.
//!
//! The shell is one task per call that only moves bytes and sleeps until the
//! core's next deadline; every decision is in the core. The engine talks to
//! it through a [`MediaHandle`]: commands go in on a channel, events come out
//! on another. Dropping the handle ends the task and frees the socket.

mod core;
mod event;
mod latch;
mod params;

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn, Instrument};

pub use self::core::{Input, MediaCore, Output};
pub use self::event::{AudioSink, MediaEvent, MediaStats, PlaybackId};
pub use self::params::{
    Latching, MediaParams, ParamsError, DEFAULT_LATCH_WINDOW, MAX_PTIME, MIN_PTIME,
};
use crate::dtmf::{self, DtmfError};
use crate::prompt::Prompt;

/// Receive buffer size: G.711 at 60 ms is 492 bytes; leave room for
/// extensions and odd peers without ever truncating a sane packet.
const RECV_BUFFER: usize = 2048;

/// After this many consecutive receive errors the socket is considered
/// broken and we stop reading from it (sending continues), rather than spin.
const MAX_RECV_ERRORS: u32 = 100;

/// Why a session could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The parameters are unusable.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The socket has no local address (not bound).
    #[error("RTP socket has no local address: {0}")]
    Socket(#[from] io::Error),
}

/// Kept small (the parameters boxed): the channel's first block holds 32
/// commands for every session from its start.
enum Command {
    Play(PlaybackId, Prompt),
    StopPlayback,
    SendDtmf(char),
    Update(Box<MediaParams>),
    Stats(oneshot::Sender<MediaStats>),
    Stop,
}

/// Starts media sessions.
#[derive(Debug)]
pub struct MediaSession;

impl MediaSession {
    /// Run a session on `socket` (one socket per call, so sipp's identical
    /// SSRCs never mix) in a new tokio task. Must be called inside a tokio
    /// runtime.
    pub fn start(socket: UdpSocket, params: MediaParams) -> Result<MediaHandle, StartError> {
        Self::start_inner(socket, params, None)
    }

    /// Like [`start`](Self::start), delivering the caller's decoded audio to
    /// `sink` on the session task.
    pub fn start_with_sink(
        socket: UdpSocket,
        params: MediaParams,
        sink: Box<dyn AudioSink>,
    ) -> Result<MediaHandle, StartError> {
        Self::start_inner(socket, params, Some(sink))
    }

    fn start_inner(
        socket: UdpSocket,
        params: MediaParams,
        sink: Option<Box<dyn AudioSink>>,
    ) -> Result<MediaHandle, StartError> {
        let mut core = MediaCore::new(Instant::now(), params)?;
        if let Some(sink) = sink {
            core.set_audio_sink(sink);
        }
        let local_addr = socket.local_addr()?;
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let span = tracing::debug_span!("media", local = %local_addr, ssrc = core.ssrc());
        let task = tokio::spawn(run(core, socket, command_rx, event_tx).instrument(span));
        Ok(MediaHandle {
            commands: command_tx,
            events: event_rx,
            task,
            local_addr,
        })
    }
}

/// The engine's side of a running session.
#[derive(Debug)]
pub struct MediaHandle {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    task: JoinHandle<MediaStats>,
    local_addr: SocketAddr,
}

impl MediaHandle {
    /// The local RTP address (for the SDP answer).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Play `prompt`, replacing any prompt playing. The returned id comes
    /// back in [`MediaEvent::PlaybackDone`] when it finished.
    pub fn play(&self, prompt: Prompt) -> PlaybackId {
        let id = PlaybackId::next();
        self.send(Command::Play(id, prompt));
        id
    }

    /// Stop the prompt playing (barge-in); no `PlaybackDone` for it.
    pub fn stop_playback(&self) {
        self.send(Command::StopPlayback);
    }

    /// Send a DTMF digit (RFC 4733). Invalid digits are refused here; if the
    /// peer did not negotiate telephone-event the digit is dropped with a
    /// warning in the log.
    pub fn send_dtmf(&self, digit: char) -> Result<(), DtmfError> {
        dtmf::event_for_digit(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        self.send(Command::SendDtmf(digit));
        Ok(())
    }

    /// Apply renegotiated parameters (re-INVITE, hold, resume) without
    /// interrupting the stream.
    pub fn update(&self, params: MediaParams) -> Result<(), ParamsError> {
        params.validate()?;
        self.send(Command::Update(Box::new(params)));
        Ok(())
    }

    /// The next event; `None` once the session has ended.
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        self.events.recv().await
    }

    /// Current counters; `None` if the session has ended.
    pub async fn stats(&self) -> Option<MediaStats> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx));
        rx.await.ok()
    }

    /// End the session, free its socket and return the final counters.
    pub async fn stop(self) -> MediaStats {
        self.send(Command::Stop);
        match self.task.await {
            Ok(stats) => stats,
            Err(error) => {
                warn!(%error, "media task failed");
                MediaStats::default()
            }
        }
    }

    fn send(&self, command: Command) {
        // Fails only when the task has ended, and then there is nothing to do.
        let _ = self.commands.send(command);
    }
}

/// The session task: feed the core, do what it asks, sleep until its deadline.
async fn run(
    mut core: MediaCore,
    socket: UdpSocket,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> MediaStats {
    let mut buf = vec![0u8; RECV_BUFFER];
    // One timer entry reset at each deadline, rather than a new one per frame.
    let mut armed = Instant::now();
    let sleep = tokio::time::sleep_until(armed.into());
    tokio::pin!(sleep);
    let mut send_errors = 0u64;
    let mut recv_errors = 0u32;
    loop {
        let deadline = loop {
            match core.poll_output() {
                Output::Transmit(to, packet) => {
                    if let Err(error) = socket.send_to(packet, to).await {
                        send_errors += 1;
                        log_send_error(send_errors, to, &error);
                    }
                }
                Output::Event(event) => {
                    // The engine may have dropped its receiver while hanging
                    // up; events then have nowhere to go.
                    let _ = events.send(event);
                }
                Output::Timeout(deadline) => break deadline,
            }
        };
        if deadline != armed || sleep.is_elapsed() {
            armed = deadline;
            sleep.as_mut().reset(deadline.into());
        }
        tokio::select! {
            received = socket.recv_from(&mut buf), if recv_errors < MAX_RECV_ERRORS => {
                match received {
                    Ok((len, from)) => {
                        recv_errors = 0;
                        core.handle_input(Input::Receive(Instant::now(), from, &buf[..len]));
                    }
                    Err(error) => {
                        recv_errors += 1;
                        // Windows reports ICMP port unreachable here; Linux
                        // may too with IP_RECVERR. Neither is fatal.
                        debug!(%error, "RTP receive error");
                        if recv_errors == MAX_RECV_ERRORS {
                            warn!(%error, "RTP socket keeps failing, no longer receiving");
                        }
                    }
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { break };
                match command {
                    Command::Play(id, prompt) => core.play_with_id(id, prompt),
                    Command::StopPlayback => core.stop_playback(),
                    Command::SendDtmf(digit) => {
                        if let Err(error) = core.send_dtmf(digit) {
                            warn!(%digit, %error, "cannot send DTMF");
                        }
                    }
                    Command::Update(params) => {
                        if let Err(error) = core.update(*params) {
                            warn!(%error, "ignoring media update");
                        }
                    }
                    Command::Stats(reply) => {
                        let _ = reply.send(with_send_errors(core.stats(), send_errors));
                    }
                    Command::Stop => break,
                }
            }
            () = &mut sleep => {
                core.handle_input(Input::Timeout(Instant::now()));
            }
        }
    }
    let stats = with_send_errors(core.stats(), send_errors);
    debug!(?stats, "media session ended");
    stats
}

fn with_send_errors(stats: MediaStats, send_errors: u64) -> MediaStats {
    MediaStats {
        send_errors,
        ..stats
    }
}

/// Log the first send error and then every 500th (10 s at 20 ms), so an
/// unreachable peer does not flood the log 50 times a second.
fn log_send_error(count: u64, to: SocketAddr, error: &io::Error) {
    if count == 1 || count.is_multiple_of(500) {
        warn!(%to, %error, count, "RTP send failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{g711, Codec};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    async fn loopback() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    async fn next_event(handle: &mut MediaHandle) -> MediaEvent {
        tokio::time::timeout(Duration::from_secs(5), handle.next_event())
            .await
            .expect("event in time")
            .expect("session alive")
    }

    #[tokio::test]
    async fn two_sessions_exchange_a_prompt_over_loopback() {
        let (sa, sb) = (loopback().await, loopback().await);
        let (addr_a, addr_b) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
        let heard = Arc::new(Mutex::new(Vec::<i16>::new()));
        let sink = heard.clone();
        let mut a = MediaSession::start(sa, MediaParams::new(Codec::Pcma, addr_b)).unwrap();
        let mut b = MediaSession::start_with_sink(
            sb,
            MediaParams::new(Codec::Pcma, addr_a),
            Box::new(move |pcm: &[i16]| sink.lock().unwrap().extend_from_slice(pcm)),
        )
        .unwrap();
        assert_eq!(a.local_addr(), addr_a);

        // 200 ms of a ramp, so we can find it in what B heard.
        let prompt: Vec<i16> = (0..1600).map(|i| (i * 16 - 12_800) as i16).collect();
        let id = a.play(Prompt::from_samples(prompt.clone()));
        assert_eq!(next_event(&mut a).await, MediaEvent::PlaybackStarted(id));
        assert_eq!(next_event(&mut a).await, MediaEvent::PlaybackDone(id));
        a.send_dtmf('7').unwrap();
        assert_eq!(next_event(&mut b).await, MediaEvent::Dtmf('7'));
        tokio::time::sleep(Duration::from_millis(150)).await;

        let stats_b = b.stats().await.unwrap();
        assert!(stats_b.packets_in >= 15, "{stats_b:?}");
        assert_eq!(stats_b.bad_packets, 0);
        let stats_a = a.stop().await;
        assert!(stats_a.packets_out >= 10 + 7);
        assert_eq!(stats_a.dtmf_out, 1);
        b.stop().await;

        let expected: Vec<i16> = prompt
            .iter()
            .map(|&s| g711::alaw_to_linear(g711::linear_to_alaw(s)))
            .collect();
        let heard = heard.lock().unwrap();
        assert!(
            heard.windows(expected.len()).any(|w| w == &expected[..]),
            "prompt not found in {} samples heard",
            heard.len()
        );
    }

    #[tokio::test]
    async fn dropping_the_handle_ends_the_session() {
        let socket = loopback().await;
        let addr = socket.local_addr().unwrap();
        let peer = loopback().await;
        let handle = MediaSession::start(
            socket,
            MediaParams::new(Codec::Pcmu, peer.local_addr().unwrap()),
        )
        .unwrap();
        let mut buf = [0u8; 256];
        let (len, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!((len, from), (172, addr));
        drop(handle);
        // The port is released once the task ends.
        let mut rebound = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Ok(s) = UdpSocket::bind(addr).await {
                rebound = Some(s);
                break;
            }
        }
        assert!(rebound.is_some());
    }

    #[tokio::test]
    async fn invalid_params_are_refused() {
        let socket = loopback().await;
        let mut params = MediaParams::new(Codec::Pcmu, "127.0.0.1:9".parse().unwrap());
        params.ptime = Duration::from_millis(7);
        assert!(matches!(
            MediaSession::start(socket, params.clone()),
            Err(StartError::Params(ParamsError::Ptime(_)))
        ));
        let handle = MediaSession::start(
            loopback().await,
            MediaParams::new(Codec::Pcmu, params.remote),
        )
        .unwrap();
        assert!(handle.update(params).is_err());
        assert_eq!(handle.send_dtmf('z'), Err(DtmfError::InvalidDigit('z')));
        handle.stop().await;
    }
}
