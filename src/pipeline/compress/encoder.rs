//! The streaming gzip and brotli encoders: output appended to the caller's buffer, gzip's
//! deflate state pooled per worker thread and reset between responses.

use std::cell::RefCell;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::config::model::Coding;

/// zlib-rs's level 2, its cheapest with Huffman codes fitted to the data: what nginx's
/// default `gzip_comp_level 1` gives (about 13.5 % of an 8 KiB JSON answer, at about a
/// quarter of zlib's cost). zlib-rs's level 1 codes with the fixed table only: JSON came
/// out half as large again as nginx's, and text outside ASCII or data that does not
/// compress came out 5–7 % larger than it went in.
const GZIP_LEVEL: u32 = 2;
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

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>, op: Op) -> bool {
        match &mut self.inner {
            Inner::Gzip { z, crc, header } => {
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
                if op == Op::Finish {
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
        if let Inner::Gzip { z, .. } = &mut self.inner {
            let Some(mut z) = z.take() else {
                return;
            };
            z.reset();
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

/// A whole body compressed (mock and Lambda responses).
pub fn compress_whole(coding: Coding, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 2 + 64);
    let mut enc = Encoder::new(coding);
    let ok = enc.write(body, &mut out) && enc.finish(&mut out);
    debug_assert!(ok, "compressing into memory does not fail");
    out
}
