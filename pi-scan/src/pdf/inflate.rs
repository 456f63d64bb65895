//! Decoding a PDF stream's data in bounded memory, keeping what decodes
//! before damage: a Flate stream cut short or with a flipped byte still
//! yields the text before the damage, as viewers show it. Every byte
//! decoded is counted against the file's inflation budget ([`Ctx`]), and
//! one stream yields at most [`MAX_STREAM`] bytes.

use crate::formats::Ctx;
use flate2::{Decompress, FlushDecompress, Status};
use lopdf::Stream;

/// Most bytes decoded from one stream.
pub(crate) const MAX_STREAM: usize = 32 << 20;

/// Streams coded with a filter other than Flate (LZW, ASCII85) are decoded
/// by lopdf, which has no cap, only when their data is at most this long:
/// LZW expands at most about 1,400 times.
const MAX_OTHER: usize = 64 << 10;

/// How decoding a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// To its end.
    Whole,
    /// Damaged or cut short: the bytes before the damage were kept.
    Broken,
    /// Stopped at [`MAX_STREAM`] or the file's budget.
    Capped,
    /// A filter this reader does not decode (an image codec, encryption).
    Unsupported,
}

/// The decoded data of `s`, as far as it decodes.
pub(crate) fn decode(s: &Stream, ctx: &Ctx) -> (Vec<u8>, Decoded) {
    let filters: Vec<&[u8]> = s.filters().unwrap_or_default();
    match filters.as_slice() {
        [] => (s.content.clone(), Decoded::Whole),
        [f] if matches!(*f, b"FlateDecode" | b"Fl") => inflate(&s.content, ctx),
        _ if s.content.len() <= MAX_OTHER => match s.decompressed_content() {
            Ok(out) => {
                ctx.spend(out.len() as u64);
                (out, Decoded::Whole)
            }
            Err(_) => (Vec::new(), Decoded::Unsupported),
        },
        _ => (Vec::new(), Decoded::Unsupported),
    }
}

/// Inflates zlib (or, when the zlib header is damaged, raw deflate) data,
/// keeping the output decoded before an error.
pub(crate) fn inflate(data: &[u8], ctx: &Ctx) -> (Vec<u8>, Decoded) {
    let (out, end) = inflate_from(data, true, ctx);
    if out.is_empty() && end == Decoded::Broken && data.len() > 2 {
        // A damaged header: the deflate data after it may be intact.
        return inflate_from(&data[2..], false, ctx);
    }
    (out, end)
}

/// Compressed bytes fed to zlib at once.
const CHUNK: usize = 512;

/// Output held as it is decoded; a stream longer than this is decoded
/// twice, first to learn its length, then into a buffer of exactly that
/// length (growing a buffer by doubling would hold half as much again).
const HELD: usize = 1 << 20;

fn inflate_from(data: &[u8], zlib: bool, ctx: &Ctx) -> (Vec<u8>, Decoded) {
    let cap = MAX_STREAM.min(usize::try_from(ctx.budget()).unwrap_or(usize::MAX));
    let mut out = Vec::new();
    let (total, end) = run(data, zlib, cap, |b| {
        if out.len() + b.len() <= HELD {
            out.extend_from_slice(b)
        }
    });
    ctx.spend(total as u64);
    if total > out.len() {
        out = Vec::with_capacity(total);
        run(data, zlib, total, |b| out.extend_from_slice(b));
    }
    (out, end)
}

/// Inflates `data` into `sink` up to `cap` bytes: how many, and how it
/// ended.
fn run(data: &[u8], zlib: bool, cap: usize, mut sink: impl FnMut(&[u8])) -> (usize, Decoded) {
    let mut d = Decompress::new(zlib);
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        if total >= cap {
            return (total, Decoded::Capped);
        }
        let want = buf.len().min(cap - total);
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let at = usize::try_from(in_before).unwrap_or(usize::MAX);
        // Fed a little at a time: on an error, zlib may drop what it
        // decoded in the same call.
        let input = data.get(at..).unwrap_or(&[]);
        let input = &input[..input.len().min(CHUNK)];
        let got = d.decompress(input, &mut buf[..want], FlushDecompress::None);
        let n = usize::try_from(d.total_out() - out_before).unwrap_or(0);
        sink(&buf[..n]);
        total += n;
        match got {
            Ok(Status::StreamEnd) => return (total, Decoded::Whole),
            Err(_) => return (total, Decoded::Broken),
            // No progress: the data ended before the stream did.
            Ok(_) if d.total_in() == in_before && n == 0 => return (total, Decoded::Broken),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_cut_stream_keeps_what_decoded_before_the_cut() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let z = deflate(&text);
        let ctx = Ctx::new();
        assert_eq!(inflate(&z, &ctx), (text.clone(), Decoded::Whole));
        let (out, end) = inflate(&z[..z.len() / 2], &ctx);
        assert_eq!(end, Decoded::Broken);
        assert!(
            out.len() > text.len() / 4 && text.starts_with(&out),
            "{}",
            out.len()
        );
        let mut flipped = z.clone();
        flipped[z.len() / 2] ^= 0x55;
        let (out, end) = inflate(&flipped, &ctx);
        assert_eq!(end, Decoded::Broken);
        let same = out.iter().zip(&text).take_while(|(a, b)| a == b).count();
        assert!(same > text.len() / 3, "{same} of {}", text.len());
    }

    #[test]
    fn a_damaged_zlib_header_falls_back_to_raw_deflate() {
        let mut z = deflate(b"SSN 536-22-1234");
        z[0] = 0;
        assert_eq!(inflate(&z, &Ctx::new()).0, b"SSN 536-22-1234");
    }

    #[test]
    fn a_bomb_stops_at_the_budget() {
        let z = deflate(&vec![b' '; 1 << 20]);
        let ctx = Ctx::new();
        ctx.spend(ctx.budget() - 100_000);
        let (out, end) = inflate(&z, &ctx);
        assert_eq!((out.len(), end), (100_000, Decoded::Capped));
        assert_eq!(ctx.budget(), 0);
    }
}
