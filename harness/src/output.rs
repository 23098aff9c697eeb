//! A candidate's stdout and stderr, kept twice: as files (the full record, attached to reports)
//! and as an in-memory line log that scenarios can search and wait on.
//!
//! Both pipes are drained continuously by their own tasks, so a chatty candidate never blocks on
//! a full pipe (the classic deadlock of piped output nobody reads). The line log is append-only
//! and searchable from the start, so a scenario that starts waiting for a line *after* it was
//! printed still finds it; a broadcast channel would have lost it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

use crate::poll::{self, Poll, PollError};
use crate::timeouts;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Items taken from lines of both pipes, written stream by stream, each in its own order:
/// `stdout: a | b; stderr: c` (`sep` between items; a stream with none is left out; `(none)`
/// when both are empty). The order within a pipe is the candidate's; how two pipes interleave
/// is up to the scheduler and the readers, so a note that showed it would differ between two
/// runs of one build.
pub fn per_stream(items: impl IntoIterator<Item = (Stream, String)>, sep: &str) -> String {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for (stream, item) in items {
        match stream {
            Stream::Stdout => out.push(item),
            Stream::Stderr => err.push(item),
        }
    }
    let parts: Vec<String> = [("stdout", out), ("stderr", err)]
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(name, items)| format!("{name}: {}", items.join(sep)))
        .collect();
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join("; ")
    }
}

/// One line of candidate output.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Which pipe.
    pub stream: Stream,
    /// The text, without the newline, exactly as printed (ANSI escapes included).
    pub text: String,
    /// When it was read, relative to the spawn.
    #[serde(skip)]
    pub at: Duration,
}

impl Line {
    /// The text with ANSI escape sequences removed (GoFastr colours its banner unconditionally).
    pub fn plain(&self) -> String {
        strip_ansi(&self.text)
    }
}

/// Remove ANSI CSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug)]
struct Inner {
    lines: Mutex<Vec<Line>>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// How many of the two pipes have reached end of file.
    closed: std::sync::atomic::AtomicUsize,
}

/// The output of one process. Cheap to clone; all clones see the same lines.
#[derive(Debug, Clone)]
pub struct Output {
    inner: Arc<Inner>,
}

impl Output {
    /// Start draining `stdout` and `stderr` into files under `log_dir` and the line log.
    pub(crate) fn capture(
        stdout: impl AsyncRead + Unpin + Send + 'static,
        stderr: impl AsyncRead + Unpin + Send + 'static,
        log_dir: &Path,
        started: Instant,
    ) -> Output {
        let inner = Arc::new(Inner {
            lines: Mutex::new(Vec::new()),
            stdout_path: log_dir.join("stdout.log"),
            stderr_path: log_dir.join("stderr.log"),
            closed: std::sync::atomic::AtomicUsize::new(0),
        });
        let output = Output { inner };
        output.drain(stdout, Stream::Stdout, started);
        output.drain(stderr, Stream::Stderr, started);
        output
    }

    fn drain(&self, pipe: impl AsyncRead + Unpin + Send + 'static, stream: Stream, started: Instant) {
        let inner = self.inner.clone();
        let path = match stream {
            Stream::Stdout => inner.stdout_path.clone(),
            Stream::Stderr => inner.stderr_path.clone(),
        };
        tokio::spawn(async move {
            let mut file = tokio::fs::File::create(&path).await.ok();
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if let Some(f) = file.as_mut() {
                    let _ = f.write_all(&buf).await;
                }
                let text = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                let line = Line {
                    stream,
                    text,
                    at: started.elapsed(),
                };
                inner.lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
            if let Some(mut f) = file {
                let _ = f.flush().await;
            }
            inner.closed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    }

    /// Every line so far, in the order read (stdout and stderr interleaved by arrival).
    pub fn lines(&self) -> Vec<Line> {
        self.inner.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first line so far that satisfies `pred`.
    pub fn find(&self, pred: impl Fn(&Line) -> bool) -> Option<Line> {
        self.inner
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|l| pred(l))
            .cloned()
    }

    /// The text of one stream so far, ANSI escapes removed.
    pub fn text(&self, stream: Stream) -> String {
        self.lines()
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.plain() + "\n")
            .collect()
    }

    /// The last `n` lines of both streams, each prefixed by its stream, ANSI removed.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.lines();
        let skip = lines.len().saturating_sub(n);
        lines[skip..]
            .iter()
            .map(|l| {
                format!(
                    "{}: {}",
                    if l.stream == Stream::Stdout { "out" } else { "err" },
                    l.plain()
                )
            })
            .collect()
    }

    /// Wait until a line satisfying `pred` has been printed (possibly already).
    pub async fn wait_for_line(
        &self,
        what: &str,
        ceiling: Duration,
        pred: impl Fn(&Line) -> bool,
    ) -> Result<Line, PollError> {
        poll::wait_for(format!("a line {what}"), ceiling, timeouts::POLL_INTERVAL, || {
            let found = self.find(&pred);
            let last = self
                .lines()
                .last()
                .map(|l| l.plain())
                .unwrap_or_else(|| "(no output yet)".into());
            async move {
                match found {
                    Some(line) => Poll::Ready(line),
                    None => Poll::NotYet(format!("last line: {last}")),
                }
            }
        })
        .await
    }

    /// True once both pipes have reached end of file: every line the process (and anything that
    /// inherited its pipes) wrote has been read.
    pub fn is_complete(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) == 2
    }

    /// Wait (bounded) until both pipes are drained. After a process exits, its last lines may
    /// still be in the pipe; judging its output before this would miss them.
    pub async fn wait_complete(&self, ceiling: Duration) -> Result<(), PollError> {
        poll::wait_for(
            "the candidate's stdout and stderr to be read to the end",
            ceiling,
            timeouts::POLL_INTERVAL,
            || {
                let done = self.is_complete();
                async move {
                    if done {
                        Poll::Ready(())
                    } else {
                        Poll::NotYet("a pipe is still open".into())
                    }
                }
            },
        )
        .await
    }

    /// Where the full stdout record is written.
    pub fn stdout_path(&self) -> &Path {
        &self.inner.stdout_path
    }

    /// Where the full stderr record is written.
    pub fn stderr_path(&self) -> &Path {
        &self.inner.stderr_path
    }
}

#[cfg(test)]
mod tests {
    use super::{Stream, per_stream, strip_ansi};

    #[test]
    fn per_stream_does_not_depend_on_how_the_pipes_interleave() {
        let one = [(Stream::Stdout, "a"), (Stream::Stderr, "x"), (Stream::Stdout, "b")];
        let other = [(Stream::Stderr, "x"), (Stream::Stdout, "a"), (Stream::Stdout, "b")];
        let text = |items: &[(Stream, &str)]| per_stream(items.iter().map(|(s, t)| (*s, t.to_string())), " | ");
        assert_eq!(text(&one), "stdout: a | b; stderr: x");
        assert_eq!(text(&one), text(&other));
        // Order within a pipe is kept: it is the candidate's.
        assert_eq!(text(&[(Stream::Stdout, "b"), (Stream::Stdout, "a")]), "stdout: b | a");
        assert_eq!(text(&[]), "(none)");
    }

    #[test]
    fn strips_banner_colours() {
        let banner = "\u{1b}[1mgofastr\u{1b}[0m \u{1b}[33m→\u{1b}[0m Listening: http://[::]:8080";
        assert_eq!(strip_ansi(banner), "gofastr → Listening: http://[::]:8080");
    }
}
