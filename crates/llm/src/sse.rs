//! An incremental server-sent events parser, as the WHATWG HTML standard
//! defines the `text/event-stream` format
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>).
//!
//! Bytes go in as the network delivers them, split anywhere; complete events
//! come out. Lines are buffered as bytes and decoded only once complete, so a
//! multi-byte UTF-8 character split across two reads is never decoded in
//! halves. Lines end in `\r\n`, `\n` or `\r`; `:` lines are comments; several
//! `data:` lines join with `\n`. `id` and `retry` are read past: these
//! streams are never resumed. It knows nothing of what the data means: each
//! provider adapter does.

use std::mem;

/// The longest line or event accepted, so that a peer that never ends a line
/// cannot grow the buffer without bound.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the event had one (the standard's default type
    /// is `message`).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Bytes that are not an event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A complete line is not UTF-8.
    #[error("a line of the event stream is not UTF-8")]
    InvalidUtf8,
    /// A line or an event grew past [`MAX_EVENT_BYTES`].
    #[error("an event of the stream is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// The parser's state between two reads.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line not yet ended.
    pending: Vec<u8>,
    /// How many bytes at the start of `pending` are known to hold no line
    /// ending, so one-byte reads do not rescan the line each time.
    scanned: usize,
    /// Whether the first line, which may start with a byte order mark, has
    /// been read.
    past_first_line: bool,
    /// The event being assembled.
    fields: Fields,
}

#[derive(Debug, Default)]
struct Fields {
    event: Option<String>,
    data: String,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes; returns the events they complete, in order.
    ///
    /// After an error the stream is unusable: the caller should stop.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut line_start = 0;
        let mut search_from = self.scanned;
        loop {
            let Some(offset) = self.pending[search_from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
            else {
                search_from = self.pending.len();
                break;
            };
            let line_end = search_from + offset;
            let next = if self.pending[line_end] == b'\r' {
                match self.pending.get(line_end + 1) {
                    Some(b'\n') => line_end + 2,
                    Some(_) => line_end + 1,
                    // A `\r` last: wait to see whether `\n` follows.
                    None => {
                        search_from = line_end;
                        break;
                    }
                }
            } else {
                line_end + 1
            };
            let mut line = std::str::from_utf8(&self.pending[line_start..line_end])
                .map_err(|_| SseError::InvalidUtf8)?;
            if !self.past_first_line {
                self.past_first_line = true;
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if let Some(event) = self.fields.line(line) {
                events.push(event);
            }
            line_start = next;
            search_from = next;
        }
        self.pending.drain(..line_start);
        self.scanned = search_from - line_start;
        if self.pending.len() + self.fields.data.len() > MAX_EVENT_BYTES {
            return Err(SseError::TooLarge);
        }
        Ok(events)
    }
}

impl Fields {
    /// Interprets one line; returns the event a blank line dispatches.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // `id`, `retry` and unknown fields: ignored.
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if self.data.is_empty() {
            return None;
        }
        let mut data = mem::take(&mut self.data);
        data.pop();
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        chunks
            .iter()
            .flat_map(|chunk| parser.push(chunk).unwrap())
            .collect()
    }

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn a_complete_event_in_one_read() {
        assert_eq!(
            parse_all(&[b"event: ping\ndata: {\"type\": \"ping\"}\n\n"]),
            vec![event(Some("ping"), "{\"type\": \"ping\"}")]
        );
    }

    #[test]
    fn an_event_split_across_reads_waits_for_its_blank_line() {
        let mut parser = SseParser::new();
        assert_eq!(parser.push(b"data: hel").unwrap(), vec![]);
        assert_eq!(parser.push(b"lo\n").unwrap(), vec![]);
        assert_eq!(parser.push(b"\n").unwrap(), vec![event(None, "hello")]);
    }

    #[test]
    fn crlf_lf_and_cr_all_end_lines() {
        let expected = vec![
            event(Some("a"), "1"),
            event(None, "2"),
            event(None, "3"),
            event(None, "4"),
        ];
        assert_eq!(
            parse_all(&[b"event: a\r\ndata: 1\r\n\r\ndata: 2\n\ndata: 3\r\rdata: 4\n\n"]),
            expected
        );
    }

    #[test]
    fn crlf_split_between_reads_is_one_line_ending() {
        // Were `\r` and `\n` taken as two endings, the `\n` would be a blank
        // line dispatching a half-built event.
        let mut parser = SseParser::new();
        assert_eq!(parser.push(b"data: a\r").unwrap(), vec![]);
        assert_eq!(parser.push(b"\ndata: b\r\n\r").unwrap(), vec![]);
        assert_eq!(parser.push(b"\n").unwrap(), vec![event(None, "a\nb")]);
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            parse_all(&[b": keep-alive\n\n:another\ndata: x\n\n"]),
            vec![event(None, "x")]
        );
    }

    #[test]
    fn multi_line_data_joins_with_newlines() {
        assert_eq!(
            parse_all(&[b"data: {\ndata:  \"a\": 1\ndata: }\n\n"]),
            vec![event(None, "{\n \"a\": 1\n}")]
        );
    }

    #[test]
    fn a_field_without_colon_or_space_is_read_as_the_standard_says() {
        // `data` alone is an empty data line; `data:x` has no space to strip.
        assert_eq!(parse_all(&[b"data\ndata:x\n\n"]), vec![event(None, "\nx")]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_forgets_its_name() {
        assert_eq!(
            parse_all(&[b"event: lonely\n\ndata: next\n\n"]),
            vec![event(None, "next")]
        );
    }

    #[test]
    fn id_and_retry_are_ignored() {
        assert_eq!(
            parse_all(&[b"id: 7\nretry: 100\ndata: x\n\n"]),
            vec![event(None, "x")]
        );
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped() {
        assert_eq!(
            parse_all(&["\u{feff}data: x\n\n".as_bytes()]),
            vec![event(None, "x")]
        );
    }

    #[test]
    fn a_multi_byte_character_split_between_reads_is_decoded_whole() {
        let text = "data: héllo 世界 🚀\n\n".as_bytes();
        // Inside "🚀" (4 bytes), after its first byte.
        let cut = text.len() - 5;
        assert_eq!(
            parse_all(&[&text[..cut], &text[cut..]]),
            vec![event(None, "héllo 世界 🚀")]
        );
    }

    #[test]
    fn every_split_point_and_one_byte_reads_give_the_same_events() {
        let stream = "event: a\r\ndata: héllo\r\ndata: 世界\r\n\r\n: note\n\
                      data: 🚀\n\ndata: end\r\r: tail\n"
            .as_bytes();
        let whole = parse_all(&[stream]);
        assert_eq!(
            whole,
            vec![
                event(Some("a"), "héllo\n世界"),
                event(None, "🚀"),
                event(None, "end")
            ]
        );
        for cut in 0..=stream.len() {
            assert_eq!(
                parse_all(&[&stream[..cut], &stream[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(
            SseParser::new().push(b"data: \xff\n"),
            Err(SseError::InvalidUtf8)
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = SseParser::new();
        let chunk = vec![b'x'; 1024 * 1024];
        let result = (0..5).try_for_each(|_| parser.push(&chunk).map(drop));
        assert_eq!(result, Err(SseError::TooLarge));
    }
}
