//! voxbridge on-box models.
//!
//! This crate will own ASR engines behind one trait (whisper-rs, a grammar
//! engine), the intent classifier (ONNX Runtime) and TTS (espeak-ng), with
//! model files, checksums and worker pools. It is empty until that work lands;
//! the engine's built-in flow uses WAV prompts and DTMF only.
