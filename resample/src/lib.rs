//! Sample-rate conversion of whole i16 buffers for voxbridge: 8 ↔ 16 kHz for
//! the speech engines, and any WAV or synthesiser rate (11025, 22050, 44100,
//! 48000…) down to the 8 kHz of G.711.
//!
//! One job, one implementation: both `media` (prompts) and `models`
//! (recognisers, TTS) call this crate, so a prompt and an utterance go
//! through the same filter. The maths is `rubato`'s synchronous resampler
//! ([`rubato::Fft`]): the rates are fixed for a whole buffer, so nothing
//! needs the asynchronous (drifting-ratio) machinery. Buffers are whole
//! prompts or utterances, not streams: there is no state between calls, and
//! the output is aligned with the input (rubato's start-up delay is trimmed).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// Samples per FFT block on the *lower-rate* side (at least; rounded up to
/// whole multiples of the rate pair's smallest block, and to an even count).
///
/// The anti-aliasing filter is a windowed sinc as long as one block, and
/// rubato places its cutoff from the block length: 512 samples with the
/// Blackman-Harris² window puts it at ~0.97 × the lower Nyquist frequency,
/// so at 8 kHz the phone band (300–3400 Hz) and the fricatives up to
/// ~3.6 kHz pass flat, while everything from 4 kHz up is in the stop band
/// (tested: ≥ 40 dB down). A longer block sharpens the edge a little more
/// but costs more zero-padding at the end of short utterances; 256 moves the
/// cutoff down to ~0.94 (3.76 kHz) with the transition starting inside the
/// band we keep.
const LOW_SIDE_BLOCK: usize = 512;

/// Largest FFT block (input side) before falling back to rubato's
/// asynchronous sinc resampler: a coprime pair of odd rates (44101 → 8000
/// has no common factor) needs a block as long as a whole second of input,
/// which is fine up to the 384 kHz the prompt loader accepts but not for a
/// nonsense rate in the millions.
const MAX_BLOCK: usize = 1 << 20;

/// Resamples `input` from `from_hz` to `to_hz`.
///
/// The output has `ceil(len × to_hz / from_hz)` samples: every output
/// instant that falls inside the input gets one. Sample `n` of the output is
/// the band-limited input at time `n / to_hz` (no group delay). A zero rate
/// or an empty input yields an empty buffer; equal rates return a copy.
pub fn resample(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    if from_hz == 0 || to_hz == 0 || input.is_empty() {
        return Vec::new();
    }
    if from_hz == to_hz {
        return input.to_vec();
    }
    let samples: Vec<f32> = input.iter().map(|&s| f32::from(s)).collect();
    let out = resample_f32(&samples, from_hz as usize, to_hz as usize);
    let want = output_len(input.len(), from_hz, to_hz);
    let mut out: Vec<i16> = out.into_iter().take(want).map(to_i16).collect();
    // rubato rounds its length from a float ratio; pad the (at most one)
    // missing tail sample with the last one rather than a click to zero.
    let last = out.last().copied().unwrap_or(0);
    out.resize(want, last);
    out
}

/// 8 kHz → 16 kHz (exactly twice as many samples).
pub fn upsample_8k_to_16k(input: &[i16]) -> Vec<i16> {
    resample(input, 8_000, 16_000)
}

/// 16 kHz → 8 kHz (half as many samples, rounded up).
pub fn downsample_16k_to_8k(input: &[i16]) -> Vec<i16> {
    resample(input, 16_000, 8_000)
}

/// Any rate → 8 kHz.
pub fn to_8k(input: &[i16], from_hz: u32) -> Vec<i16> {
    resample(input, from_hz, 8_000)
}

/// `ceil(len × to / from)` in integers (a float ratio can land a hair above
/// a whole number and add a sample).
fn output_len(len: usize, from_hz: u32, to_hz: u32) -> usize {
    let n = (len as u128 * u128::from(to_hz)).div_ceil(u128::from(from_hz));
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn resample_f32(input: &[f32], from: usize, to: usize) -> Vec<f32> {
    let g = gcd(from, to);
    let (min_in, min_out) = (from / g, to / g);
    // Whole blocks of the pair's smallest size, enough for LOW_SIDE_BLOCK on
    // the lower-rate side, and an even count so both block lengths are even:
    // the sinc is then centred on a whole output sample and the delay rubato
    // reports (half an output block) is exact.
    let low_min = min_in.min(min_out);
    let mut chunks = LOW_SIDE_BLOCK.div_ceil(low_min).max(1);
    if !(chunks * min_in).is_multiple_of(2) || !(chunks * min_out).is_multiple_of(2) {
        chunks += 1;
    }
    let block_in = chunks * min_in;
    let resampler: Result<Box<dyn Resampler<f32>>, _> = if block_in > MAX_BLOCK {
        async_sinc(from, to)
    } else {
        Fft::<f32>::new_custom(
            from,
            to,
            block_in,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .map(|r| Box::new(r) as Box<dyn Resampler<f32>>)
    };
    let Ok(mut resampler) = resampler else {
        // Only zero rates or chunk sizes are refused, and neither gets here.
        return Vec::new();
    };
    let Ok(adapter) = InterleavedSlice::new(input, 1, input.len()) else {
        return Vec::new();
    };
    // `process_all` feeds the buffer through in blocks, pads the end with
    // zeros and drops the start-up delay, so the output lines up.
    match resampler.process_all(&adapter, input.len(), None) {
        Ok(out) => out.take_data(),
        Err(_) => Vec::new(),
    }
}

/// The same quality from rubato's asynchronous sinc resampler held at a
/// fixed ratio: a 256-tap Blackman-Harris² sinc (the length rubato suggests
/// for full quality), the cutoff rubato derives from it (the highest that
/// keeps aliasing under the window's side lobes), 256 sub-sample phases with
/// cubic interpolation between them.
fn async_sinc(
    from: usize,
    to: usize,
) -> Result<Box<dyn Resampler<f32>>, rubato::ResamplerConstructionError> {
    let parameters = SincInterpolationParameters {
        sinc_len: 256,
        f_cutoff: None,
        oversampling_factor: 256,
        interpolation: SincInterpolationType::Cubic,
        window: WindowFunction::BlackmanHarris2,
    };
    Async::<f32>::new_sinc(
        to as f64 / from as f64,
        1.0,
        &parameters,
        1024,
        1,
        FixedAsync::Input,
    )
    .map(|r| Box::new(r) as Box<dyn Resampler<f32>>)
}

fn to_i16(x: f32) -> i16 {
    // `as` saturates, and NaN (which a sum of finite samples never makes)
    // would become 0.
    x.round() as i16
}

#[cfg(test)]
mod tests;
