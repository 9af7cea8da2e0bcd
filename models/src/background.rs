//! CPU priority of the recogniser threads. They do long, CPU-bound work for
//! one caller; the engine's async workers pace every call's RTP and answer
//! SIP in slices of microseconds, 50 times a second per call. At the same
//! priority, two always-busy recogniser threads take an equal share of two
//! cores from the async workers, and every call's packets leave late once
//! the recognisers are saturated. So recogniser threads run at a lower
//! priority: they get every cycle the calls leave idle, and yield the rest.
//! (The one espeak-ng thread keeps the normal priority: it can take at most
//! one core, and on a machine busy with other work a lowered synthesiser
//! leaves callers in silence.)

/// The nice value recogniser threads run at (Linux: 0 is normal, 19 lowest; a
/// nice-10 thread gets about a tenth of the CPU a nice-0 one does when both
/// want it).
pub const MODEL_THREAD_NICE: i32 = 10;

/// Lower the calling thread's CPU priority to [`MODEL_THREAD_NICE`]. Threads
/// it creates afterwards (whisper.cpp's) inherit it. Best effort: where the
/// OS refuses, the thread keeps its priority, which only costs pacing under
/// load.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority with PRIO_PROCESS
        // and a thread id changes only that thread on Linux.
        let rc = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, MODEL_THREAD_NICE)
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a model thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    fn nice_of_this_thread() -> i32 {
        // SAFETY: plain syscalls on the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_calling_thread_and_only_it_is_lowered() {
        let before = nice_of_this_thread();
        let lowered = std::thread::spawn(|| {
            super::lower_this_thread();
            nice_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, super::MODEL_THREAD_NICE.max(before));
        assert_eq!(nice_of_this_thread(), before);
    }
}
