//! What goes into the call core and what comes out of it. Plain data: no
//! sockets, no tasks, no stack types, so a test can play a whole call.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use voxbridge_crm::model::Customer;
use voxbridge_dialog::interp::{Listen, LookupRequest, TicketRequest};
use voxbridge_dialog::value::Value;
use voxbridge_media::{MediaParams, Prompt};

use crate::call::EndReason;
use crate::screen_pop::Handover;
use crate::speech::{SpeechError, Understood};

/// Something that happened, for [`CallCore::handle_input`](super::CallCore::handle_input).
#[derive(Debug)]
pub enum Input {
    /// The deadline the core asked for has come (or any time after it).
    Timeout,
    /// Something on the signalling leg.
    Leg(LegInput),
    /// Something on the media stream or in the caller's audio.
    Media(MediaInput),
    /// Work the core asked for has finished.
    Done(Done),
    /// The drain timeout passed: end the call now.
    Drain,
}

/// What the leg reports (inbound SIP today; outbound and WebRTC later).
#[derive(Debug, Clone, PartialEq)]
pub enum LegInput {
    /// The peer confirmed our answer (ACK).
    Confirmed,
    /// A key sent in signalling (SIP INFO).
    Dtmf(char),
    /// A new offer inside the call (re-INVITE/UPDATE): answer with
    /// [`Command::AnswerOffer`].
    Offer(Vec<u8>),
    /// The peer asks us to call someone else (incoming REFER).
    Referred(String),
    /// Progress of the REFER we sent: the sipfrag status, and whether the
    /// subscription ended.
    ReferProgress { code: u16, terminated: bool },
    /// The leg ended by the peer or the stack.
    Ended(LegEnd),
}

/// Why the leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    /// The peer hung up (BYE).
    RemoteBye,
    /// The peer gave up before the answer (CANCEL).
    Cancelled,
    /// We hung up.
    LocalBye,
    /// The INVITE was refused.
    Rejected,
    /// No ACK, or a transaction timed out.
    Timeout,
    /// Anything else (the stack is gone).
    Other,
}

/// What the media session and the endpointer on it report.
#[derive(Debug)]
pub enum MediaInput {
    /// The first packet of a prompt left.
    PlaybackStarted,
    /// The prompt finished.
    PlaybackDone,
    /// A key sent as RFC 4733 events.
    Dtmf(char),
    /// No RTP from the caller for the inactivity timeout.
    Inactive,
    /// The media session stopped on its own (a fault).
    Stopped,
    /// The caller started speaking.
    SpeechStarted,
    /// The caller spoke over a prompt long enough to mean it.
    BargeIn,
    /// A whole utterance (8 kHz), with when it ended and the silence waited.
    Utterance {
        audio: Vec<i16>,
        ended_at: Instant,
        endpointing: Duration,
    },
    /// A pause within an utterance: the speech so far, when it stopped and
    /// the silence since (see `speech::early`).
    Paused {
        audio: Vec<i16>,
        ended_at: Instant,
        endpointing: Duration,
    },
    /// The caller spoke on after a pause.
    Resumed,
    /// The answering-machine detector decided something (a call we
    /// placed, while it is screened).
    Machine(voxbridge_models::amd::AmdEvent),
}

/// The outcome of work the core asked for; `id`s match the command's.
#[derive(Debug)]
pub enum Done {
    /// The RTP port for the answer (or why none could be had).
    Port(Result<u16, String>),
    /// The caller lookup started while ringing.
    Customer(Option<Customer>),
    /// The 200 OK went out and media runs (or the reason it did not).
    Answered(Result<(), String>),
    /// A prompt is ready to play (`None`: it could not be made; logged).
    Prompt {
        id: u64,
        prompt: Option<Prompt>,
        took: Duration,
    },
    /// A recognised and classified utterance.
    Recognised {
        id: u64,
        result: Result<Understood, SpeechError>,
    },
    /// The recognition of the speech so far at a pause, and whether it is
    /// a complete answer to the question.
    Speculated {
        id: u64,
        result: Result<Understood, SpeechError>,
        complete: bool,
    },
    Lookup {
        id: u64,
        result: Result<Value, String>,
        took: Duration,
    },
    Ticket {
        id: u64,
        result: Result<String, String>,
        took: Duration,
    },
    /// The final response to our REFER (or why it could not be sent).
    ReferSent(Result<u16, String>),
    /// The target of an incoming REFER answered and the shell moved the
    /// call to it (new RTP port, new Call-ID; the referrer heard NOTIFY 200
    /// and BYE), or the status to report in the final NOTIFY.
    ReferFollowed(Result<(u16, String), u16>),
}

/// Where a prompt comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptSource {
    /// Text to speech.
    Speak {
        text: String,
        language: String,
        voice: Option<String>,
    },
    /// A WAV file.
    File(PathBuf),
}

/// Something for the shell to do.
#[derive(Debug)]
pub enum Command {
    /// 180 Ringing.
    Ring,
    /// An RTP port for the answer; `Done::Port` follows.
    AllocatePort,
    /// Look the caller up in the CRM; `Done::Customer` follows.
    LookUpCaller,
    /// Send the 200 OK with this SDP and start media; `Done::Answered` follows.
    Answer { sdp: String, media: MediaParams },
    /// Refuse the call with a final status.
    Reject { code: u16 },
    /// Make a prompt (TTS or file); `Done::Prompt` follows.
    PreparePrompt { id: u64, source: PromptSource },
    /// Play a prompt now (replacing any playing).
    Play(Prompt),
    /// Stop the prompt playing.
    StopPlayback,
    /// Tell the endpointer whether to run at all (`listening`: a question
    /// takes speech, or a prompt speech may barge into is on; otherwise no
    /// frame is scored and no audio kept), whether a prompt counts as
    /// playing (speech over it is a barge-in), the end-of-speech silence
    /// wanted and the prompt's barge-in rule (voiced speech needed), each 0
    /// for the configured default, and the pause within an utterance that
    /// hands over the speech so far (0: none).
    Hearing {
        listening: bool,
        prompt_active: bool,
        end_silence_ms: u32,
        barge_in_ms: u32,
        pause_ms: u32,
    },
    /// Recognise an utterance for a question; `Done::Recognised` follows.
    /// A new one replaces any still running.
    Recognise {
        id: u64,
        listen: Box<Listen>,
        audio: Vec<i16>,
    },
    /// Recognise the speech so far at a pause, unless the recogniser has
    /// work waiting; `Done::Speculated` follows. Does not replace the
    /// turn's recognition.
    Speculate {
        id: u64,
        listen: Box<Listen>,
        audio: Vec<i16>,
    },
    /// The turn ended before the endpointer's silence did: drop what it
    /// holds of this utterance and listen afresh.
    CutUtterance,
    /// Ask the CRM/ERP; `Done::Lookup` follows.
    Lookup { id: u64, request: LookupRequest },
    /// Open a ticket; `Done::Ticket` follows.
    Ticket {
        id: u64,
        request: TicketRequest,
        customer: Option<Box<Customer>>,
    },
    /// Send REFER; `Done::ReferSent` follows. `handover` is what the
    /// agent's screen pop shows.
    Refer {
        refer_to: String,
        user_to_user: Option<String>,
        handover: Box<Handover>,
    },
    /// Answer the re-INVITE: new media parameters and our SDP, or a status.
    AnswerOffer(Result<(MediaParams, String), u16>),
    /// Answer an incoming REFER: 202, or a refusal status.
    AnswerRefer(Result<(), u16>),
    /// Report an incoming REFER's progress by NOTIFY.
    NotifyRefer { code: u16, terminated: bool },
    /// Call the target of an incoming REFER; `Done::ReferFollowed` follows.
    FollowRefer { target: String },
    /// A line for the live transcript.
    Transcript { speaker: &'static str, text: String },
    /// Stop media and end the leg (BYE when `bye`: not when the peer
    /// already ended it); nothing more will be asked.
    Hangup { bye: bool },
    /// The call is over: write its record.
    Finished(EndReason),
}

/// What [`CallCore::poll_output`](super::CallCore::poll_output) returns.
#[derive(Debug)]
pub enum Output {
    Command(Command),
    /// Nothing more now: call again with `Input::Timeout` at this instant
    /// (`None`: only an input can move the call).
    Timeout(Option<Instant>),
}
