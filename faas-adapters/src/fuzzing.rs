//! Entry points into this crate's private parsers of outside input, for the
//! fuzz targets of `fuzz/` (feature `fuzzing`; not a stable API). Each one
//! calls the product code itself, never a copy: the stdio protocol a
//! runtime reads back from a runner (`runner::protocol`) and the readers of
//! the `files` layout's data files and names (`fs::layout`).

use faas_ports::{CollectionPath, EnvMap, FunctionName, Version};

use crate::fs::layout;
use crate::runner::protocol;

/// What every frame line starts with (`\x1eLCF:`).
pub const FRAME_PREFIX: &[u8] = protocol::FRAME_PREFIX;

/// The runtime's line splitter for the frames of one nonce.
#[derive(Debug)]
pub struct LineSplitter(protocol::LineSplitter);

impl LineSplitter {
    /// A splitter for the frames of `nonce`, at most `cap` bytes a line.
    pub fn new(cap: u64, nonce: &str) -> Self {
        Self(protocol::LineSplitter::new(cap, nonce))
    }

    /// Feeds a chunk: the frame lines it completed, or the length of a frame
    /// line over the cap.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, usize> {
        self.0.feed(chunk).map_err(|overflow| overflow.0)
    }

    /// Bytes held for an unfinished line.
    pub fn buffered(&self) -> usize {
        self.0.buffered()
    }
}

/// A frame of the current job, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The runner is up.
    Ready,
    /// The runner took the job.
    Started,
    /// One captured log entry.
    Log(Vec<u8>),
    /// The verdict.
    Result {
        /// The result envelope.
        envelope: Vec<u8>,
        /// The runner may take another job.
        reusable: bool,
    },
    /// The envelope was over the output limit: its size.
    TooLarge(u64),
}

/// The runner key of [`parse_frame`]'s MACs (public: fuzzing only).
pub const FUZZ_KEY: [u8; 32] = [7; 32];
/// The challenge of [`parse_frame`]'s MACs.
pub const FUZZ_CHALLENGE: &str = "fuzz";

/// Parses one frame line: `Ok(None)` for another nonce's frame or a line
/// that is no frame, `Err` with the reason for a frame of `nonce` that
/// makes no sense (also one whose length or MAC, under [`FUZZ_KEY`] and
/// [`FUZZ_CHALLENGE`], does not match its payload).
pub fn parse_frame(line: &[u8], nonce: &str) -> Result<Option<Frame>, String> {
    let auth = protocol::FrameAuth::with_nonce(FUZZ_KEY, FUZZ_CHALLENGE, nonce);
    let frame = protocol::parse_frame(line, &auth).map_err(|bad| bad.0)?;
    Ok(frame.map(|frame| match frame {
        protocol::Frame::Ready => Frame::Ready,
        protocol::Frame::Started => Frame::Started,
        protocol::Frame::Log(payload) => Frame::Log(payload.to_vec()),
        protocol::Frame::Result { envelope, reusable } => Frame::Result {
            envelope: envelope.to_vec(),
            reusable,
        },
        protocol::Frame::TooLarge(size) => Frame::TooLarge(size),
    }))
}

/// The version in the bytes of a `{name}.meta.json` (the reason when it is
/// unreadable).
pub fn parse_meta_file(bytes: &[u8]) -> Result<Version, String> {
    layout::parse_meta(bytes).map_err(|e| e.to_string())
}

/// The env map in the bytes of an env file and the keys it dropped (the
/// reason when it is unreadable).
pub fn parse_env_file(bytes: &[u8]) -> Result<(EnvMap, Vec<String>), String> {
    layout::parse_env_file(bytes).map_err(|bad| format!("{bad:?}"))
}

/// The function a file of a `functions/` directory holds (`None`: not a
/// source file; `Some(None)`: a source file with an invalid name).
pub fn function_of_file(file_name: &str) -> Option<Option<FunctionName>> {
    layout::function_of_file(file_name).map(Result::ok)
}

/// The collection a directory named `segment` below `parent` stands for.
pub fn collection_of_dir(parent: &CollectionPath, segment: &str) -> Option<CollectionPath> {
    layout::collection_of_dir(parent, segment)
}
