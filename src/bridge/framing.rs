//! The stdio transport's framing: one JSON-RPC message per line on the child's stdin and
//! stdout, UTF-8, no embedded newlines. Lines are read with a hard cap, because a child that
//! prints without ever ending a line would otherwise grow the buffer without bound.

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// What one line of the child's stdout turned out to be.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A JSON object that claims to be JSON-RPC 2.0.
    Message(Value),
    /// Not a JSON-RPC message. The text is a short, lossy prefix for the log only.
    Garbage(String),
    /// A line longer than the cap; the rest of the stream cannot be trusted to resynchronise.
    TooLong,
    /// End of stream.
    Eof,
}

/// How much of a bad line goes to the log: enough to recognise it, never a flood.
const GARBAGE_PREVIEW_BYTES: usize = 200;

/// Reads lines of at most `max` bytes (newline excluded) from `reader`.
pub struct LineReader<R> {
    reader: R,
    max: usize,
    line: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self {
            reader,
            max,
            line: Vec::new(),
        }
    }

    /// Reads the next line, without its terminator (`\n` or `\r\n`), into `self.line`. A
    /// last line without a newline is a line. Past the cap, `Stop` gives up on the line (its
    /// bytes so far are discarded) and `Cut` keeps the first `max` bytes and skips the rest.
    async fn read_line(&mut self, past_cap: PastCap) -> std::io::Result<LineRead> {
        self.line.clear();
        let mut truncated = false;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                if self.line.is_empty() && !truncated {
                    return Ok(LineRead::Eof);
                }
                break;
            }
            let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            let room = self.max.saturating_sub(self.line.len());
            if chunk.len() > room {
                if past_cap == PastCap::Stop {
                    return Ok(LineRead::TooLong);
                }
                truncated = true;
            }
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            let consumed = chunk.len() + usize::from(found_newline);
            self.reader.consume(consumed);
            if found_newline {
                break;
            }
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(LineRead::Line { truncated })
    }

    /// The next frame of a JSON-RPC stream. Blank lines are skipped: some servers print one
    /// after each message, and it carries nothing.
    pub async fn next_frame(&mut self) -> std::io::Result<Frame> {
        loop {
            match self.read_line(PastCap::Stop).await? {
                LineRead::TooLong => return Ok(Frame::TooLong),
                LineRead::Eof => return Ok(Frame::Eof),
                LineRead::Line { .. } => {}
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(parse_line(&self.line));
        }
    }

    /// The next line as text for the log, cut to the cap (the rest of an over-long line is
    /// skipped, not returned as more lines). `None` at end of stream.
    pub async fn next_log_line(&mut self) -> std::io::Result<Option<String>> {
        let LineRead::Line { truncated } = self.read_line(PastCap::Cut).await? else {
            return Ok(None);
        };
        let mut text = String::from_utf8_lossy(&self.line).into_owned();
        if truncated {
            text.push_str(" […truncated]");
        }
        Ok(Some(text))
    }
}

/// What [`LineReader::read_line`] does with a line longer than the cap.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PastCap {
    /// The stream cannot be trusted to resynchronise (JSON-RPC).
    Stop,
    /// Keep the start, skip the rest (log lines).
    Cut,
}

enum LineRead {
    Eof,
    Line { truncated: bool },
    TooLong,
}

/// A line is a message when it is a JSON object with `"jsonrpc": "2.0"`. Anything else
/// (a banner, a stray `console.log`, half a message) is garbage on a protocol stream.
pub fn parse_line(line: &[u8]) -> Frame {
    match serde_json::from_slice::<Value>(line) {
        Ok(value) if is_jsonrpc(&value) => Frame::Message(value),
        _ => Frame::Garbage(preview(line)),
    }
}

fn is_jsonrpc(value: &Value) -> bool {
    value.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
}

/// A short lossy prefix of `bytes`, safe to log.
pub fn preview(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(GARBAGE_PREVIEW_BYTES)];
    let mut text: String = String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { '·' } else { c })
        .collect();
    if bytes.len() > GARBAGE_PREVIEW_BYTES {
        text.push('…');
    }
    text
}

/// One message as a stdio line. serde_json's compact form never contains a raw newline
/// (newlines inside strings are escaped), so the framing cannot be broken by content.
pub fn encode_line(message: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(message).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The shape of a JSON-RPC message, which decides where it goes.
#[derive(Debug, PartialEq)]
pub enum Kind<'a> {
    Request { id: &'a Value, method: &'a str },
    Notification { method: &'a str },
    Response { id: &'a Value },
    Invalid,
}

pub fn classify(message: &Value) -> Kind<'_> {
    let method = message.get("method").and_then(Value::as_str);
    let id = message.get("id").filter(|id| is_valid_id(id));
    match (method, id) {
        (Some(method), Some(id)) => Kind::Request { id, method },
        (Some(method), None) if message.get("id").is_none() => Kind::Notification { method },
        (None, Some(id)) if message.get("result").is_some() || message.get("error").is_some() => {
            Kind::Response { id }
        }
        _ => Kind::Invalid,
    }
}

/// MCP ids are strings or integers (never null, unlike plain JSON-RPC).
fn is_valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// A key that tells ids apart by type too: `1` and `"1"` are different requests.
pub fn id_key(id: &Value) -> String {
    match id {
        Value::String(s) => format!("s:{s}"),
        other => format!("n:{other}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut reader = LineReader::new(input, max);
        let mut out = Vec::new();
        loop {
            let frame = reader.next_frame().await.unwrap();
            let end = matches!(frame, Frame::Eof | Frame::TooLong);
            out.push(frame);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn reads_messages_skips_blank_lines_and_accepts_crlf_and_a_last_unterminated_line() {
        let input = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\n  \n{\"jsonrpc\":\"2.0\",\"method\":\"m\"}";
        assert_eq!(
            frames(input, 1024).await,
            vec![
                Frame::Message(json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
                Frame::Message(json!({"jsonrpc": "2.0", "method": "m"})),
                Frame::Eof
            ]
        );
    }

    #[tokio::test]
    async fn garbage_is_reported_with_a_bounded_control_free_preview() {
        let long = format!("Server listening\x1b[0m {}\n", "x".repeat(500));
        let got = frames(long.as_bytes(), 4096).await;
        let Frame::Garbage(text) = &got[0] else {
            panic!("{got:?}")
        };
        assert!(text.starts_with("Server listening·[0m xxx"), "{text}");
        assert_eq!(text.chars().count(), GARBAGE_PREVIEW_BYTES + 1);
        // JSON that is not JSON-RPC 2.0 is garbage too.
        assert_eq!(
            frames(b"[1,2]\n{\"id\":1}\n", 64).await,
            vec![
                Frame::Garbage("[1,2]".into()),
                Frame::Garbage("{\"id\":1}".into()),
                Frame::Eof
            ]
        );
    }

    #[tokio::test]
    async fn a_line_over_the_cap_stops_the_stream_even_without_a_newline() {
        let input = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{}\"}}", "a".repeat(100));
        assert_eq!(frames(input.as_bytes(), 64).await, vec![Frame::TooLong]);
        // Exactly at the cap is accepted.
        let exact = br#"{"jsonrpc":"2.0","method":"m"}"#;
        assert_eq!(
            frames(exact, exact.len()).await,
            vec![
                Frame::Message(json!({"jsonrpc": "2.0", "method": "m"})),
                Frame::Eof
            ]
        );
    }

    #[tokio::test]
    async fn log_lines_are_cut_to_the_cap_and_the_rest_of_the_line_is_skipped() {
        let mut reader = LineReader::new(&b"0123456789abc\nnext\r\n"[..], 10);
        assert_eq!(
            reader.next_log_line().await.unwrap().as_deref(),
            Some("0123456789 […truncated]")
        );
        assert_eq!(
            reader.next_log_line().await.unwrap().as_deref(),
            Some("next")
        );
        assert_eq!(reader.next_log_line().await.unwrap(), None);
    }

    #[test]
    fn encoded_lines_have_exactly_one_newline_whatever_the_content() {
        let line = encode_line(&json!({"jsonrpc": "2.0", "method": "a\nb\r\n"}));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn classify_tells_requests_notifications_and_responses_apart() {
        let request = json!({"jsonrpc": "2.0", "id": "a", "method": "tools/list"});
        assert_eq!(
            classify(&request),
            Kind::Request {
                id: &json!("a"),
                method: "tools/list"
            }
        );
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(
            classify(&note),
            Kind::Notification {
                method: "notifications/initialized"
            }
        );
        let response = json!({"jsonrpc": "2.0", "id": 7, "error": {"code": 1, "message": "x"}});
        assert_eq!(classify(&response), Kind::Response { id: &json!(7) });
        // A null or fractional id, or a response without result or error, is invalid.
        for bad in [
            json!({"jsonrpc": "2.0", "id": null, "method": "m"}),
            json!({"jsonrpc": "2.0", "id": 1.5, "result": {}}),
            json!({"jsonrpc": "2.0", "id": 1}),
        ] {
            assert_eq!(classify(&bad), Kind::Invalid, "{bad}");
        }
        assert_ne!(id_key(&json!(1)), id_key(&json!("1")));
    }
}
