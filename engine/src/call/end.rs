//! Why a call ended: one label per metric series and call record.

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up (BYE).
    CallerHangup,
    /// The caller gave up before we answered (CANCEL).
    CallerCancel,
    /// The flow hung up (or the drain timeout did).
    BotHangup,
    /// No RTP from the caller for `rtp.inactivity_timeout_secs`.
    RtpTimeout,
    /// We refused the INVITE (bad SDP, no port, overload, draining).
    Rejected,
    /// No ACK, a transaction timeout, a panic or another internal failure.
    Error,
    /// Handed to a human by REFER; the target answered.
    Transferred,
    /// The last transfer attempt failed and the call then ended.
    TransferFailed,
}

impl EndReason {
    pub const COUNT: usize = 8;
    pub const ALL: [EndReason; EndReason::COUNT] = [
        EndReason::CallerHangup,
        EndReason::CallerCancel,
        EndReason::BotHangup,
        EndReason::RtpTimeout,
        EndReason::Rejected,
        EndReason::Error,
        EndReason::Transferred,
        EndReason::TransferFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::CallerCancel => "caller_cancel",
            EndReason::BotHangup => "bot_hangup",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::Rejected => "rejected",
            EndReason::Error => "error",
            EndReason::Transferred => "transferred",
            EndReason::TransferFailed => "transfer_failed",
        }
    }
}
