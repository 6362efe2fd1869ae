//! Property tests: for every receiver, any segmentation of a stream yields the same
//! frames (and the same overflow or framing error, and the same close) as the whole
//! stream in one chunk.

mod util;

use proptest::prelude::*;
use torsion_toolkit::framing::{
    Delimiter, FramingError, IntNStringReceiver, LineControl, LineDecoder, LineHandler,
    LineOnlyControl, LineOnlyHandler, LineOnlyReceiver, LineReceiver, NetstringReceiver, Prefix8,
    Prefix16, Prefix32, PrefixWidth, StringControl, StringHandler,
};
use torsion_transport::Protocol;
use util::{Event, LineClient, LineEcho, Log, connect, feed_cut, log};

/// Lines; "raw N" switches to raw mode for exactly N bytes, reported as one event.
struct Lines {
    log: Log,
    raw_left: usize,
    raw: Vec<u8>,
}

impl LineHandler for Lines {
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        self.log.borrow_mut().push(Event::Line(line.to_vec()));
        if let Some(n) = line.strip_prefix(b"raw ") {
            if let Some(n) = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok()) {
                self.raw_left = n;
                if n > 0 {
                    ctl.set_raw_mode();
                } else {
                    self.log.borrow_mut().push(Event::Raw(Vec::new()));
                }
            }
        }
    }
    fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        let take = self.raw_left.min(data.len());
        self.raw.extend_from_slice(&data[..take]);
        self.raw_left -= take;
        if self.raw_left == 0 {
            self.log
                .borrow_mut()
                .push(Event::Raw(std::mem::take(&mut self.raw)));
            ctl.set_line_mode_with(&data[take..]);
        }
    }
    fn line_length_exceeded(&mut self, _data: &[u8], ctl: &mut LineControl<'_>) {
        // What the hook gets depends on the chunking, as in Twisted; that it is called
        // does not.
        self.log.borrow_mut().push(Event::Exceeded(Vec::new()));
        ctl.lose_connection();
    }
}

struct OnlyLines(Log);

impl LineOnlyHandler for OnlyLines {
    fn line_received(&mut self, line: &[u8], _: &mut LineOnlyControl<'_>) {
        self.0.borrow_mut().push(Event::Line(line.to_vec()));
    }
    fn line_length_exceeded(&mut self, _data: &[u8], ctl: &mut LineOnlyControl<'_>) {
        self.0.borrow_mut().push(Event::Exceeded(Vec::new()));
        ctl.lose_connection();
    }
}

struct Strings(Log);

impl StringHandler for Strings {
    fn string_received(&mut self, s: &[u8], _: &mut StringControl<'_>) {
        self.0.borrow_mut().push(Event::String(s.to_vec()));
    }
    fn length_limit_exceeded(&mut self, length: usize, ctl: &mut StringControl<'_>) {
        self.0.borrow_mut().push(Event::LimitExceeded(length));
        ctl.lose_connection();
    }
    fn framing_error(&mut self, error: &FramingError, _: &mut StringControl<'_>) {
        self.0.borrow_mut().push(Event::Error(error.to_string()));
    }
}

/// The events and the close flag after feeding `stream` cut at `cuts`.
fn run(
    make: &dyn Fn(Log) -> Box<dyn Protocol>,
    stream: &[u8],
    cuts: &[usize],
) -> (Vec<Event>, bool) {
    let log = log();
    let mut p = make(log.clone());
    let t = connect(&mut *p);
    feed_cut(&mut *p, stream, cuts);
    let events = log.borrow().clone();
    (events, t.disconnecting())
}

/// The receiver `make` builds sees the same events (and closes or not alike) whether
/// `stream` comes whole, cut at `cuts`, or one byte at a time.
fn same_for_any_cut(
    make: &dyn Fn(Log) -> Box<dyn Protocol>,
    stream: &[u8],
    cuts: Vec<usize>,
) -> Result<(), TestCaseError> {
    let whole = run(make, stream, &[]);
    let cut = run(make, stream, &sorted(cuts, stream.len()));
    prop_assert_eq!(&cut, &whole);
    let bytes = run(make, stream, &(0..=stream.len()).collect::<Vec<_>>());
    prop_assert_eq!(&bytes, &whole, "one byte at a time");
    Ok(())
}

fn sorted(mut cuts: Vec<usize>, len: usize) -> Vec<usize> {
    for c in &mut cuts {
        *c %= len + 1;
    }
    cuts.sort_unstable();
    cuts
}

/// Line content: bytes from a small alphabet rich in delimiter pieces.
fn content() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![b'a', b'b', b'\r', b' ', b';', b'\n']),
        0..16,
    )
}

#[derive(Debug, Clone)]
enum Item {
    Line(Vec<u8>),
    Raw(Vec<u8>),
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(
        prop_oneof![
            4 => content().prop_map(Item::Line),
            1 => prop::collection::vec(any::<u8>(), 0..20).prop_map(Item::Raw),
        ],
        0..12,
    )
}

/// The stream for `items` with `delimiter`; line contents are used as they are, so they
/// may hold delimiters themselves (and then make more, shorter lines).
fn encode(items: &[Item], delimiter: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Line(l) => {
                out.extend_from_slice(l);
                out.extend_from_slice(delimiter);
            }
            Item::Raw(r) => {
                out.extend_from_slice(format!("raw {}", r.len()).as_bytes());
                out.extend_from_slice(delimiter);
                out.extend_from_slice(r);
            }
        }
    }
    out
}

fn delimiters() -> impl Strategy<Value = (Delimiter, Vec<u8>)> {
    prop_oneof![
        Just((Delimiter::crlf(), b"\r\n".to_vec())),
        Just((Delimiter::lf(), b"\n".to_vec())),
        Just((Delimiter::lf_optional_cr(), b"\r\n".to_vec())),
        Just((Delimiter::lf_optional_cr(), b"\n".to_vec())),
        Just((Delimiter::new(*b";;").unwrap(), b";;".to_vec())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn line_receiver_any_segmentation(
        items in items(),
        (delimiter, written) in delimiters(),
        max in 4usize..24,
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let stream = encode(&items, &written);
        let make = |log: Log| -> Box<dyn Protocol> {
            Box::new(
                LineReceiver::new(Lines { log, raw_left: 0, raw: Vec::new() })
                    .with_delimiter(delimiter.clone())
                    .with_max_length(max),
            )
        };
        same_for_any_cut(&make, &stream, cuts)?;
    }

    #[test]
    fn line_decoder_gives_line_receivers_lines_for_any_segmentation(
        lines in prop::collection::vec(content(), 0..12),
        (delimiter, written) in delimiters(),
        max in 4usize..24,
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let items: Vec<Item> = lines.into_iter().map(Item::Line).collect();
        let stream = encode(&items, &written);
        let make = |log: Log| -> Box<dyn Protocol> {
            Box::new(
                LineOnlyReceiver::new(OnlyLines(log))
                    .with_delimiter(delimiter.clone())
                    .with_max_length(max),
            )
        };
        // The receiver, fed the whole stream: its lines, then `Exceeded` if one was too long.
        let (expected, _) = run(&make, &stream, &[]);
        let mut decoder = LineDecoder::new().with_delimiter(delimiter.clone()).with_max_length(max);
        let mut got = Vec::new();
        let mut from = 0;
        let cuts = sorted(cuts, stream.len());
        'feed: for &to in cuts.iter().chain(std::iter::once(&stream.len())) {
            decoder.push(&stream[from..to.max(from)]);
            from = to.max(from);
            while let Some(line) = decoder.next_line() {
                match line {
                    Ok(line) => got.push(Event::Line(line)),
                    Err(FramingError::LineTooLong { max_length }) => {
                        prop_assert_eq!(max_length, max);
                        got.push(Event::Exceeded(Vec::new()));
                        break 'feed;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
                }
            }
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn line_only_receiver_any_segmentation(
        lines in prop::collection::vec(content(), 0..12),
        (delimiter, written) in delimiters(),
        max in 4usize..24,
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let items: Vec<Item> = lines.into_iter().map(Item::Line).collect();
        let stream = encode(&items, &written);
        let make = |log: Log| -> Box<dyn Protocol> {
            Box::new(
                LineOnlyReceiver::new(OnlyLines(log))
                    .with_delimiter(delimiter.clone())
                    .with_max_length(max),
            )
        };
        let whole = run(&make, &stream, &[]);
        let cut = run(&make, &stream, &sorted(cuts, stream.len()));
        prop_assert_eq!(cut, whole);
    }

    #[test]
    fn int_n_receivers_any_segmentation(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..10),
        max in 0usize..48,
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        fn check<P: PrefixWidth>(payloads: &[Vec<u8>], max: usize, cuts: &[usize]) -> Result<(), TestCaseError> {
            let stream: Vec<u8> = payloads
                .iter()
                .flat_map(|s| {
                    let mut f = (s.len() as u32).to_be_bytes()[4 - P::BYTES..].to_vec();
                    f.extend_from_slice(s);
                    f
                })
                .collect();
            let make = |log: Log| -> Box<dyn Protocol> {
                Box::new(IntNStringReceiver::<P, _>::new(Strings(log)).with_max_length(max))
            };
            let whole = run(&make, &stream, &[]);
            let cut = run(&make, &stream, &sorted(cuts.to_vec(), stream.len()));
            prop_assert_eq!(&cut, &whole);
            // The whole stream's strings are the payloads up to the first one over max.
            let expected: Vec<Event> = payloads
                .iter()
                .take_while(|p| p.len() <= max)
                .map(|p| Event::String(p.clone()))
                .collect();
            prop_assert_eq!(&whole.0[..expected.len()], &expected[..]);
            Ok(())
        }
        check::<Prefix8>(&payloads, max, &cuts)?;
        check::<Prefix16>(&payloads, max, &cuts)?;
        check::<Prefix32>(&payloads, max, &cuts)?;
    }

    #[test]
    fn netstring_receiver_any_segmentation(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..10),
        garbage in prop::collection::vec(prop::sample::select(b"0123456789:,x".to_vec()), 0..6),
        max in 0usize..48,
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut stream: Vec<u8> = payloads
            .iter()
            .flat_map(|p| {
                let mut f = format!("{}:", p.len()).into_bytes();
                f.extend_from_slice(p);
                f.push(b',');
                f
            })
            .collect();
        stream.extend_from_slice(&garbage);
        let make = |log: Log| -> Box<dyn Protocol> {
            Box::new(NetstringReceiver::new(Strings(log)).with_max_length(max))
        };
        same_for_any_cut(&make, &stream, cuts)?;
    }
}

/// The property holds over the chunking pump too: a line client and server exchange
/// random lines under a random seed.
#[test]
fn lines_over_the_chunking_pump_any_seed() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(128));
    let lines = prop::collection::vec(
        prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'\r', b' ']), 0..30),
        0..40,
    );
    // Lines hold no '\n', so a CR anywhere (even last, before the "\r\n") stays in
    // its line.
    let result = runner.run(&(lines, any::<u64>()), |(lines, seed)| {
        let log = log();
        let pump = torsion_testing::Pump::new(
            Box::new(LineReceiver::new(LineEcho)),
            Box::new(LineReceiver::new(LineClient(log.clone(), lines.clone()))),
        )
        .with_chunking(seed);
        pump.flush();
        prop_assert_eq!(util::lines(&log), lines);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
