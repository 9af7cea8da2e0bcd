//! How the shell carries out the core's commands: the leg's replies and
//! requests (through the signalling queue), media, and the work that runs
//! as tasks whose results come back as inputs (the caller lookup, script
//! lookups and tickets, prompts, recognition, the INVITE of a followed
//! REFER). Nothing here waits for the network or a model: the event loop
//! in the parent module stays free for the next input.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tracing::{warn, Instrument};
use voxbridge_media::{MediaHandle, MediaParams, MediaSession};

use super::{Finished, Moved, Shell};
use crate::call::core::{Command, Done, Input, PromptSource};
use crate::call::listeners;
use crate::call::signalling::Op;
use crate::call::work::{dial, make_prompt, BoxFuture, Reply, ReplyTo};
use crate::speech::sink::Tee;

impl Shell {
    pub(super) fn signal(&self, op: Op) {
        if let Some(s) = &self.signalling {
            s.send(op);
        }
    }

    /// Run a task whose result (or, if it never gives one, `fallback`)
    /// comes back as an input.
    fn spawn<F>(&self, fallback: Done, work: F) -> tokio::task::AbortHandle
    where
        F: FnOnce(ReplyTo) -> BoxFuture + Send + 'static,
    {
        let fut = work(ReplyTo(Reply::new(self.done_tx.clone(), fallback)));
        tokio::spawn(fut.in_current_span()).abort_handle()
    }

    /// Carry out one command of the core.
    pub(super) async fn execute(&mut self, command: Command) {
        match command {
            Command::Ring => {
                if let Err(e) = self.leg.ring() {
                    warn!(error = %e, "could not send 180");
                }
            }
            Command::AllocatePort => {
                // A call we placed named its port in our offer already.
                if let Some(s) = &self.socket {
                    let port = s.local_addr().map(|a| a.port()).map_err(|e| e.to_string());
                    self.ready.push(Input::Done(Done::Port(port)));
                    return;
                }
                let port = self
                    .ctx
                    .ports
                    .bind()
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        let port = s.local_addr().map_err(|e| e.to_string())?.port();
                        self.socket = Some(s);
                        Ok(port)
                    });
                self.ready.push(Input::Done(Done::Port(port)));
            }
            Command::LookUpCaller => {
                if let Some(crm) = self.ctx.crm.clone() {
                    let from = self.party.uri.clone();
                    let id = self.party.customer_id.clone();
                    let since = self.info.received;
                    let (live, call_id) = (self.ctx.live.clone(), self.info.call_id.clone());
                    let pops = self.ctx.config.console.enabled;
                    self.spawn(Done::Customer(None), move |r| {
                        Box::pin(async move {
                            let found = match id {
                                Some(id) => crm.lookup_id(&id, since).await,
                                None => crm.lookup(&from, since).await,
                            };
                            // The console's live page shows who is calling.
                            if let Some(c) = &found {
                                live.customer(&call_id, &c.name);
                            }
                            let customer_id = found.as_ref().map(|c| c.id.clone());
                            r.send(Done::Customer(found));
                            // After the answer, not before it: the open
                            // orders are for an agent's screen pop, if the
                            // call is transferred.
                            if let (true, Some(id)) = (pops, customer_id) {
                                let orders = crm.orders(&id).await;
                                live.orders(&call_id, crate::screen_pop::open_orders(&orders));
                            }
                        })
                    });
                }
            }
            Command::Answer { sdp, media } => {
                let result = self.answer(sdp, media);
                self.ready.push(Input::Done(Done::Answered(result)));
            }
            Command::Reject { code } => {
                if let Err(e) = self.leg.reject(code) {
                    warn!(error = %e, "could not send rejection");
                }
            }
            Command::PreparePrompt { id, source } => self.prepare(id, source),
            Command::Play(prompt) => {
                if let Some(m) = &self.media {
                    m.play(prompt);
                }
            }
            Command::StopPlayback => {
                if let Some(m) = &self.media {
                    m.stop_playback();
                }
            }
            Command::Hearing {
                listening,
                prompt_active,
                end_silence_ms,
                barge_in_ms,
                pause_ms,
            } => {
                self.listening.store(listening, Ordering::Relaxed);
                self.prompt_playing.store(prompt_active, Ordering::Relaxed);
                self.end_silence_ms.store(end_silence_ms, Ordering::Relaxed);
                self.barge_in_ms.store(barge_in_ms, Ordering::Relaxed);
                self.early.pause_ms.store(pause_ms, Ordering::Relaxed);
            }
            Command::Recognise { id, listen, audio } => self.recognise(id, listen, audio),
            Command::Speculate { id, listen, audio } => self.speculate(id, listen, audio),
            Command::CutUtterance => {
                self.early.cuts.fetch_add(1, Ordering::Relaxed);
            }
            Command::Lookup { id, request } => {
                let fallback = Done::Lookup {
                    id,
                    result: Err("lookup task failed".into()),
                    took: Duration::ZERO,
                };
                let crm = self.ctx.crm.clone();
                self.spawn(fallback, move |r| {
                    Box::pin(async move {
                        let t = Instant::now();
                        let result = match crm {
                            Some(crm) => crm.script_lookup(&request).await,
                            None => Err("no CRM configured".to_string()),
                        };
                        r.send(Done::Lookup {
                            id,
                            result,
                            took: t.elapsed(),
                        })
                    })
                });
            }
            Command::Ticket {
                id,
                request,
                customer,
            } => {
                let fallback = Done::Ticket {
                    id,
                    result: Err("ticket task failed".into()),
                    took: Duration::ZERO,
                };
                let crm = self.ctx.crm.clone();
                let call_id = self.info.call_id.clone();
                self.spawn(fallback, move |r| {
                    Box::pin(async move {
                        let t = Instant::now();
                        let result = match crm {
                            Some(crm) => crm.ticket(&request, &call_id, customer.as_deref()).await,
                            None => Err("no CRM configured".to_string()),
                        };
                        r.send(Done::Ticket {
                            id,
                            result,
                            took: t.elapsed(),
                        })
                    })
                });
            }
            Command::Refer {
                refer_to,
                user_to_user,
                handover,
            } => {
                self.signal(Op::Refer {
                    leg: self.control.clone(),
                    refer_to,
                    user_to_user,
                });
                // The agent's page shows the caller as the REFER leaves.
                self.ctx.live.transferred(&self.info.call_id, *handover);
            }
            Command::AnswerOffer(result) => self.answer_offer(result),
            Command::AnswerRefer(result) => {
                if let Some(reply) = self.refer_reply.take() {
                    self.signal(match result {
                        Ok(()) => Op::AcceptRefer(reply),
                        Err(code) => Op::RejectRefer(reply, code),
                    });
                }
            }
            Command::NotifyRefer { code, terminated } => self.signal(Op::Notify {
                leg: self.control.clone(),
                code,
                terminated,
            }),
            Command::FollowRefer { target } => self.follow_refer(target),
            Command::Transcript { speaker, text } => {
                self.ctx.live.line(&self.info.call_id, speaker, text);
            }
            Command::Hangup { bye } => {
                if let Some(m) = self.media.take() {
                    let stats = m.stop().await;
                    self.ctx.metrics.add_media(&stats);
                }
                if bye {
                    self.signal(Op::Bye(self.control.clone()));
                }
            }
            Command::Finished(reason) => self.reason = Some(reason),
        }
    }

    /// 200 OK, then media on the allocated socket with the recorder and
    /// the endpointer listening.
    fn answer(&mut self, sdp: String, mut params: MediaParams) -> Result<(), String> {
        // Behind NAT the caller's RTP comes from where its SIP came from.
        params.sip_source = self.info.source.map(|s| s.ip());
        let socket = self.socket.take().ok_or("no RTP socket")?;
        self.leg.answer(sdp).map_err(|e| e.to_string())?;
        self.answered_at = Some(SystemTime::now());
        let recorder = listeners::recorder(&self.ctx, &self.info).map(|(sink, path)| {
            self.recording = Some(path);
            sink
        });
        let speech = listeners::speech_sink(
            &self.ctx,
            self.listening.clone(),
            self.prompt_playing.clone(),
            self.end_silence_ms.clone(),
            self.barge_in_ms.clone(),
            self.early.clone(),
        )
        .map(|(sink, events)| {
            self.speech_events = Some(events);
            sink
        });
        let machine = self
            .party
            .machine
            .as_ref()
            .and_then(listeners::machine_sink)
            .map(|(sink, events)| {
                self.machine_events = Some(events);
                sink
            });
        let sink = [recorder, speech, machine]
            .into_iter()
            .flatten()
            .reduce(|a, b| Box::new(Tee(a, b)) as Box<_>);
        let started = match sink {
            Some(sink) => MediaSession::start_with_sink(socket, params, sink),
            None => MediaSession::start(socket, params),
        };
        self.media = Some(started.map_err(|e| format!("media session did not start: {e}"))?);
        Ok(())
    }

    fn answer_offer(&mut self, result: Result<(MediaParams, String), u16>) {
        let Some(reply) = self.offer_reply.take() else {
            return;
        };
        let op = match (result, &self.media) {
            (Ok((mut params, sdp)), Some(media)) => match media.update({
                params.sip_source = self.info.source.map(|s| s.ip());
                params
            }) {
                Ok(()) => Op::AcceptOffer(reply, sdp),
                Err(e) => {
                    warn!(error = %e, "re-INVITE media parameters refused");
                    Op::RejectOffer(reply, 488)
                }
            },
            (Ok(_), None) => Op::RejectOffer(reply, 500),
            (Err(code), _) => Op::RejectOffer(reply, code),
        };
        self.signal(op);
    }

    fn prepare(&mut self, id: u64, source: PromptSource) {
        let fallback = Done::Prompt {
            id,
            prompt: None,
            took: Duration::ZERO,
        };
        let tts = self.ctx.tts.clone();
        let files = self.ctx.prompt_files.clone();
        self.spawn(fallback, move |r| {
            Box::pin(async move {
                let t = Instant::now();
                // espeak-ng and file reads run off the runtime's workers.
                let made = tokio::task::spawn_blocking(move || {
                    make_prompt(tts.as_deref(), &files, source)
                })
                .await
                .unwrap_or_else(|e| Err(format!("prompt task failed: {e}")));
                let prompt = made
                    .map_err(|e| warn!(error = %e, "prompt not played"))
                    .ok();
                r.send(Done::Prompt {
                    id,
                    prompt,
                    took: t.elapsed(),
                })
            })
        });
    }

    fn recognise(
        &mut self,
        id: u64,
        listen: Box<voxbridge_dialog::interp::Listen>,
        audio: Vec<i16>,
    ) {
        let Some(speech) = self.ctx.speech.clone() else {
            return;
        };
        if let Some(previous) = self.recognition.take() {
            previous.abort();
        }
        let fallback = Done::Recognised {
            id,
            result: Err(crate::speech::SpeechError::Failed(
                "recognition task ended".into(),
            )),
        };
        let handle = self.spawn(fallback, move |r| {
            Box::pin(async move {
                let result = speech.understand(&listen, audio).await;
                r.send(Done::Recognised { id, result })
            })
        });
        self.recognition = Some(handle);
    }

    /// Recognise the speech so far at a pause, beside (not replacing) the
    /// turn's recognition; the speech front end refuses when the
    /// recogniser has work waiting.
    fn speculate(
        &mut self,
        id: u64,
        listen: Box<voxbridge_dialog::interp::Listen>,
        audio: Vec<i16>,
    ) {
        let Some(speech) = self.ctx.speech.clone() else {
            return;
        };
        let fallback = Done::Speculated {
            id,
            result: Err(crate::speech::SpeechError::Failed(
                "speculative recognition ended".into(),
            )),
            complete: false,
        };
        self.spawn(fallback, move |r| {
            Box::pin(async move {
                let (result, complete) = match speech.speculate(&listen, audio).await {
                    Ok((u, complete)) => (Ok(u), complete),
                    Err(e) => (Err(e), false),
                };
                r.send(Done::Speculated {
                    id,
                    result,
                    complete,
                })
            })
        });
    }

    /// INVITE the target of an incoming REFER; the call moves there when it answers.
    fn follow_refer(&mut self, target: String) {
        let ctx = self.ctx.clone();
        let tx = self.done_tx.clone();
        let fut = async move {
            let result = dial(&ctx, &target).await;
            let _ = tx.send(match result {
                Ok((leg, media, port)) => Finished::Moved(Box::new(Moved { leg, media, port })),
                Err(code) => Finished::Core(Box::new(Done::ReferFollowed(Err(code)))),
            });
        };
        tokio::spawn(fut.in_current_span());
    }

    /// Stop a session that is no longer the call's, off the loop.
    pub(super) fn stop_media(&self, media: MediaHandle) {
        let metrics = self.ctx.metrics.clone();
        tokio::spawn(async move {
            let stats = media.stop().await;
            metrics.add_media(&stats);
        });
    }
}
