//! The streaming gzip and brotli encoders: output appended to the caller's buffer, gzip's
//! deflate state pooled per worker thread and reset between responses.

use std::cell::RefCell;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::config::model::Coding;

/// zlib-rs's level 1: about half the CPU of its level 2, output about 1.5 times nginx's
/// level 1 on ASCII JSON (20 % of an 8 KiB answer against 13.5 %).
const GZIP_LEVEL: u32 = 1;
/// What a response whose level-1 output is poor switches to: level 1 codes with the fixed
/// Huffman table only, so text outside ASCII and bytes that hardly compress came out 5–7 %
/// larger than they went in (a CJK JSON answer: 107 %); level 2 fits the codes to the data
/// and gives nginx's level-1 output (that CJK answer: 72 %), at twice level 1's cost, which
/// only such responses pay.
const GZIP_LEVEL_POOR: u32 = 2;
/// Output above this share of the input (in quarters) is poor: CJK text at level 1 is
/// about 4.3, ASCII JSON 0.8, at level 2 2.9 and 0.5.
const POOR_QUARTERS: u64 = 3;
/// Brotli quality 4 compresses better than gzip -6 at about gzip -1's cost.
const BROTLI_QUALITY: u32 = 4;
/// 256 KiB window: bounds brotli's memory per response.
const BROTLI_LGWIN: u32 = 18;
/// Idle deflate states kept per worker thread.
const POOL: usize = 16;

thread_local! {
    /// Deflate states reset and ready for the next response on this worker.
    static DEFLATE: RefCell<Vec<Compress>> = const { RefCell::new(Vec::new()) };
}

/// gzip member header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

type BrotliState = brotli::enc::encode::BrotliEncoderStateStruct<brotli::enc::StandardAlloc>;

/// A streaming encoder; output is appended to the caller's buffer.
pub struct Encoder {
    inner: Inner,
}

enum Inner {
    /// `z` is Some until the encoder is dropped and hands it back to the pool.
    Gzip {
        z: Option<Compress>,
        crc: Crc,
        header: bool,
        /// The output so far has been judged (at the first flush): level 1's, or poor
        /// enough that the rest goes at `GZIP_LEVEL_POOR`.
        judged: bool,
        /// The deflate state runs at `GZIP_LEVEL_POOR` (set back before it is pooled).
        poor: bool,
        /// The stream was finished: only then is the state pooled. zlib-rs's reset
        /// leaves level 1's "block open" mark, so a state dropped mid-block (a backend's
        /// bad chunk after some body, a cut) began the next response's stream by closing
        /// a block it never opened: an undecodable body, cached too.
        finished: bool,
    },
    Br(Box<BrotliState>),
}

/// How much of the input to bring out now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Process,
    Flush,
    Finish,
}

impl Encoder {
    pub fn new(coding: Coding) -> Encoder {
        let inner = match coding {
            Coding::Gzip => Inner::Gzip {
                z: Some(
                    DEFLATE
                        .with(|p| p.borrow_mut().pop())
                        .unwrap_or_else(|| Compress::new(Compression::new(GZIP_LEVEL), false)),
                ),
                crc: Crc::new(),
                header: false,
                judged: false,
                poor: false,
                finished: false,
            },
            Coding::Br => {
                use brotli::enc::encode::BrotliEncoderParameter as P;
                let mut s = Box::new(BrotliState::new(brotli::enc::StandardAlloc::default()));
                s.set_parameter(P::BROTLI_PARAM_QUALITY, BROTLI_QUALITY);
                s.set_parameter(P::BROTLI_PARAM_LGWIN, BROTLI_LGWIN);
                Inner::Br(s)
            }
        };
        Encoder { inner }
    }

    /// Compresses `input`; output may lag behind until a flush.
    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        self.run(input, out, Op::Process)
    }

    /// Brings out everything written so far (the stream stays open).
    pub fn flush(&mut self, out: &mut Vec<u8>) -> bool {
        self.run(&[], out, Op::Flush)
    }

    /// Ends the stream (gzip: with its CRC and length trailer).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        self.run(&[], out, Op::Finish)
    }

    /// Compresses at `GZIP_LEVEL_POOR` from now on (gzip; brotli is left as it is).
    fn poor_from_now(&mut self) {
        if let Inner::Gzip {
            z: Some(z),
            judged,
            poor,
            ..
        } = &mut self.inner
        {
            *judged = true;
            *poor = z.set_level(Compression::new(GZIP_LEVEL_POOR)).is_ok();
        }
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>, op: Op) -> bool {
        match &mut self.inner {
            Inner::Gzip {
                z,
                crc,
                header,
                judged,
                poor,
                finished,
            } => {
                if !*header {
                    out.extend_from_slice(&GZIP_HEADER);
                    *header = true;
                }
                crc.update(input);
                let flush = match op {
                    Op::Process => FlushCompress::None,
                    Op::Flush => FlushCompress::Sync,
                    Op::Finish => FlushCompress::Finish,
                };
                let Some(z) = z else {
                    return false;
                };
                if !deflate(z, input, out, flush) {
                    return false;
                }
                // At the first flush (a streamed body's first read): what level 1 made of
                // it decides the rest.
                if op == Op::Flush && !*judged && z.total_in() > 0 {
                    *judged = true;
                    if is_poor(z.total_out(), z.total_in()) {
                        *poor = z.set_level(Compression::new(GZIP_LEVEL_POOR)).is_ok();
                    }
                }
                if op == Op::Finish {
                    *finished = true;
                    out.extend_from_slice(&crc.sum().to_le_bytes());
                    out.extend_from_slice(&crc.amount().to_le_bytes());
                }
                true
            }
            Inner::Br(s) => brotli_run(s, input, out, op),
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if let Inner::Gzip {
            z, poor, finished, ..
        } = &mut self.inner
        {
            let Some(mut z) = z.take().filter(|_| *finished) else {
                return;
            };
            z.reset();
            if *poor && z.set_level(Compression::new(GZIP_LEVEL)).is_err() {
                return;
            }
            DEFLATE.with(|p| {
                let mut pool = p.borrow_mut();
                if pool.len() < POOL {
                    pool.push(z);
                }
            });
        }
    }
}

/// Free room the encoders write into before asking for more.
fn room(out: &mut Vec<u8>, input: usize) {
    if out.capacity() - out.len() < 256 {
        out.reserve(input / 2 + 4096);
    }
}

fn deflate(z: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> bool {
    loop {
        room(out, input.len());
        let before = z.total_in();
        let Ok(status) = z.compress_vec(input, out, flush) else {
            return false;
        };
        input = &input[(z.total_in() - before) as usize..];
        // Output space left over means deflate had nothing more to give for this call.
        let drained = out.len() < out.capacity();
        match flush {
            FlushCompress::Finish if status == Status::StreamEnd => return true,
            FlushCompress::Finish => {}
            _ if input.is_empty() && drained => return true,
            _ => {}
        }
    }
}

fn brotli_run(s: &mut BrotliState, mut input: &[u8], out: &mut Vec<u8>, op: Op) -> bool {
    use brotli::enc::encode::BrotliEncoderOperation as O;
    let operation = match op {
        Op::Process => O::BROTLI_OPERATION_PROCESS,
        Op::Flush => O::BROTLI_OPERATION_FLUSH,
        Op::Finish => O::BROTLI_OPERATION_FINISH,
    };
    let mut nop =
        |_: &mut brotli::interface::PredictionModeContextMap<brotli::InputReferenceMut>,
         _: &mut [brotli::interface::StaticCommand],
         _: brotli::InputPair,
         _: &mut brotli::enc::StandardAlloc| ();
    loop {
        room(out, input.len());
        let start = out.len();
        let space = out.capacity() - start;
        out.resize(out.capacity(), 0);
        let (mut avail_in, mut in_at, mut avail_out, mut out_at) = (input.len(), 0, space, 0);
        let ok = s.compress_stream(
            operation,
            &mut avail_in,
            input,
            &mut in_at,
            &mut avail_out,
            &mut out[start..],
            &mut out_at,
            &mut None,
            &mut nop,
        );
        out.truncate(start + out_at);
        if !ok {
            return false;
        }
        input = &input[in_at..];
        let done = match op {
            Op::Finish => s.is_finished(),
            _ => input.is_empty() && !s.has_more_output(),
        };
        if done {
            return true;
        }
    }
}

/// Whether gzip output of `out` bytes for `input` bytes is poor (above `POOR_QUARTERS`).
fn is_poor(out: u64, input: u64) -> bool {
    out * 4 > input * POOR_QUARTERS
}

/// A whole body compressed (mock and Lambda responses): gzip at level 1, again at
/// `GZIP_LEVEL_POOR` when level 1's output is poor (the smaller is kept).
pub fn compress_whole(coding: Coding, body: &[u8]) -> Vec<u8> {
    let whole = |poor: bool| {
        let mut out = Vec::with_capacity(body.len() / 2 + 64);
        let mut enc = Encoder::new(coding);
        if poor {
            enc.poor_from_now();
        }
        let ok = enc.write(body, &mut out) && enc.finish(&mut out);
        debug_assert!(ok, "compressing into memory does not fail");
        out
    };
    let out = whole(false);
    if coding == Coding::Gzip && is_poor(out.len() as u64, body.len() as u64) {
        let again = whole(true);
        if again.len() < out.len() {
            return again;
        }
    }
    out
}
