//! `LineReceiver` and `LineOnlyReceiver`: Twisted's `test_basic.py` cases, every chunk
//! boundary, the limits, mode switches, pausing, the chunking pump, a real socket.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_testing::{AccumulatingProtocol, Pump, StringTransport};
use torsion_toolkit::framing::{
    Delimiter, LineControl, LineHandler, LineOnlyControl, LineOnlyHandler, LineOnlyReceiver,
    LineReceiver, MAX_LENGTH,
};
use torsion_transport::{Protocol, PushProducer, Reason, Transport};
use util::{Event, LineClient, LineEcho, Log, connect, feed_cut, feed_in, lines, log};

/// Records every line, raw chunk, overflow and the close.
struct Recorder {
    log: Log,
}

impl LineHandler for Recorder {
    fn line_received(&mut self, line: &[u8], _ctl: &mut LineControl<'_>) {
        self.log.borrow_mut().push(Event::Line(line.to_vec()));
    }
    fn raw_data_received(&mut self, data: &[u8], _ctl: &mut LineControl<'_>) {
        self.log.borrow_mut().push(Event::Raw(data.to_vec()));
    }
    fn line_length_exceeded(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        self.log.borrow_mut().push(Event::Exceeded(data.to_vec()));
        ctl.lose_connection();
    }
    fn connection_lost(&mut self, reason: Reason) {
        self.log.borrow_mut().push(Event::Lost(reason.is_clean()));
    }
}

fn recorder() -> (Recorder, Log) {
    let log = log();
    (Recorder { log: log.clone() }, log)
}

// ---------------------------------------------------------------------------------------
// Twisted's LineTester (test_basic.py), ported: tokens switch to raw mode, pause, stop.

struct LineTester {
    received: Received,
    length: usize,
    max: usize,
    transport: Rc<RefCell<Option<Rc<dyn Transport>>>>,
}

impl LineHandler for LineTester {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        *self.transport.borrow_mut() = Some(ctl.transport());
    }

    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        self.received.borrow_mut().push(line.to_vec());
        if line.is_empty() {
            ctl.set_raw_mode();
        } else if line == b"pause" {
            ctl.pause_producing();
        } else if line == b"rawpause" {
            ctl.pause_producing();
            ctl.set_raw_mode();
            self.received.borrow_mut().push(Vec::new());
        } else if line == b"stop" {
            ctl.transport().stop_producing();
        } else if let Some(n) = line.strip_prefix(b"len ") {
            self.length = std::str::from_utf8(n).unwrap().parse().unwrap();
        }
    }

    fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        let take = self.length.min(data.len());
        let (data, rest) = data.split_at(take);
        self.length -= take;
        if let Some(last) = self.received.borrow_mut().last_mut() {
            last.extend_from_slice(data);
        }
        if self.length == 0 {
            ctl.set_line_mode_with(rest);
        }
    }

    fn line_length_exceeded(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        if line.len() > self.max + 1 {
            ctl.set_line_mode_with(&line[self.max + 1..]);
        }
    }
}

type Handle = Rc<RefCell<Option<Rc<dyn Transport>>>>;
type Received = Rc<RefCell<Vec<Vec<u8>>>>;

fn line_tester() -> (LineReceiver<LineTester>, Received, Handle) {
    let received = Rc::new(RefCell::new(Vec::new()));
    let transport: Handle = Rc::new(RefCell::new(None));
    let p = LineReceiver::new(LineTester {
        received: received.clone(),
        length: 0,
        max: 64,
        transport: transport.clone(),
    })
    .with_delimiter(Delimiter::lf())
    .with_max_length(64);
    (p, received, transport)
}

const TWISTED_BUFFER: &[u8] = b"len 10\n\n0123456789len 5\n\n1234\nlen 20\nfoo 123\n\n0123456789\n012345678len 0\nfoo 5\n\n1234567890123456789012345678901234567890123456789012345678901234567890\nlen 1\n\na";

fn twisted_output() -> Vec<Vec<u8>> {
    [
        &b"len 10"[..],
        b"0123456789",
        b"len 5",
        b"1234\n",
        b"len 20",
        b"foo 123",
        b"0123456789\n012345678",
        b"len 0",
        b"foo 5",
        b"",
        b"67890",
        b"len 1",
        b"a",
    ]
    .iter()
    .map(|l| l.to_vec())
    .collect()
}

/// Twisted's `test_buffer`, for packet sizes 1..10 as there, and every size up to the
/// whole buffer.
#[test]
fn twisted_buffer_every_packet_size() {
    for size in 1..=TWISTED_BUFFER.len() {
        let (mut p, received, _) = line_tester();
        connect(&mut p);
        feed_in(&mut p, TWISTED_BUFFER, size);
        assert_eq!(*received.borrow(), twisted_output(), "packet size {size}");
    }
}

/// Twisted's `test_pausing`: nothing after "pause" until the resume, then the rest.
#[test]
fn twisted_pausing() {
    let buf = b"twiddle1\ntwiddle2\npause\ntwiddle3\n";
    for size in 1..=buf.len() {
        let (mut p, received, handle) = line_tester();
        let t = connect(&mut p);
        feed_in(&mut p, buf, size);
        assert_eq!(
            *received.borrow(),
            vec![
                b"twiddle1".to_vec(),
                b"twiddle2".to_vec(),
                b"pause".to_vec()
            ],
            "packet size {size}: nothing is delivered while paused"
        );
        assert_eq!(t.producer_state(), torsion_testing::ProducerState::Paused);
        let transport = handle.borrow().clone().unwrap();
        transport.resume_producing();
        assert_eq!(
            received.borrow().last().map(Vec::as_slice),
            Some(&b"twiddle3"[..]),
            "packet size {size}: the resume delivers the buffered line"
        );
        assert_eq!(
            t.producer_state(),
            torsion_testing::ProducerState::Producing
        );
    }
}

/// Twisted's `test_rawPausing`: paused in raw mode, the raw bytes wait too.
#[test]
fn twisted_raw_pausing() {
    let buf = b"twiddle1\ntwiddle2\nlen 5\nrawpause\n12345twiddle3\n";
    for size in 1..=buf.len() {
        let (mut p, received, handle) = line_tester();
        connect(&mut p);
        feed_in(&mut p, buf, size);
        let first: Vec<Vec<u8>> = [&b"twiddle1"[..], b"twiddle2", b"len 5", b"rawpause", b""]
            .iter()
            .map(|l| l.to_vec())
            .collect();
        assert_eq!(*received.borrow(), first, "packet size {size}");
        handle.borrow().clone().unwrap().resume_producing();
        let second: Vec<Vec<u8>> = [
            &b"twiddle1"[..],
            b"twiddle2",
            b"len 5",
            b"rawpause",
            b"12345",
            b"twiddle3",
        ]
        .iter()
        .map(|l| l.to_vec())
        .collect();
        assert_eq!(*received.borrow(), second, "packet size {size}");
    }
}

/// Twisted's `test_stopProducing`: nothing after "stop".
#[test]
fn twisted_stop_producing() {
    let buf = b"twiddle1\ntwiddle2\nstop\nmore\nstuff\n";
    for size in 1..=buf.len() {
        let (mut p, received, _) = line_tester();
        let t = connect(&mut p);
        feed_in(&mut p, buf, size);
        assert_eq!(
            *received.borrow(),
            vec![b"twiddle1".to_vec(), b"twiddle2".to_vec(), b"stop".to_vec()],
            "packet size {size}"
        );
        assert!(t.disconnecting());
    }
}

/// Twisted's `test_clearLineBuffer`.
#[test]
fn twisted_clear_line_buffer() {
    struct Clearing(Rc<RefCell<(Vec<u8>, Vec<u8>)>>);
    impl LineHandler for Clearing {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            *self.0.borrow_mut() = (line.to_vec(), ctl.clear_line_buffer());
        }
    }
    let seen = Rc::new(RefCell::new((Vec::new(), Vec::new())));
    let mut p = LineReceiver::new(Clearing(seen.clone()));
    connect(&mut p);
    p.data_received(b"foo\r\nbar\r\nbaz");
    assert_eq!(*seen.borrow(), (b"foo".to_vec(), b"bar\r\nbaz".to_vec()));
    p.data_received(b"quux\r\n");
    assert_eq!(*seen.borrow(), (b"quux".to_vec(), Vec::new()));
}

/// `clear_line_buffer` also takes bytes buffered from earlier chunks.
#[test]
fn clear_line_buffer_takes_earlier_chunks_too() {
    struct Clearing(Rc<RefCell<Vec<u8>>>);
    impl LineHandler for Clearing {
        fn line_received(&mut self, _line: &[u8], ctl: &mut LineControl<'_>) {
            ctl.pause_producing();
        }
        fn connection_made(&mut self, _ctl: &mut LineControl<'_>) {}
        fn read_connection_lost(&mut self, ctl: &mut LineControl<'_>) {
            *self.0.borrow_mut() = ctl.clear_line_buffer();
        }
        fn half_closeable(&self) -> bool {
            true
        }
    }
    let taken = Rc::new(RefCell::new(Vec::new()));
    let mut p = LineReceiver::new(Clearing(taken.clone()));
    connect(&mut p);
    p.data_received(b"a\r\nb\r\n");
    p.data_received(b"c");
    assert_eq!(p.buffered(), 4);
    p.as_half_closeable().unwrap().read_connection_lost();
    assert_eq!(*taken.borrow(), b"b\r\nc");
    assert_eq!(p.buffered(), 0);
}

/// Twisted's `test_stackRecursion`: switching modes once per byte, many times, in one
/// chunk (no recursion here, but the same result).
#[test]
fn twisted_stack_recursion() {
    struct Flipping(Rc<RefCell<Vec<u8>>>);
    impl LineHandler for Flipping {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.borrow_mut().extend_from_slice(line);
            ctl.set_raw_mode();
        }
        fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
            ctl.set_line_mode_with(&data[1..]);
        }
    }
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut p = LineReceiver::new(Flipping(seen.clone())).with_delimiter(Delimiter::lf());
    connect(&mut p);
    let n = 20_000;
    p.data_received(&b"x\nx".repeat(n));
    assert_eq!(*seen.borrow(), b"x".repeat(n));
}

/// Twisted's `test_maximumLineLength`: a line one byte over the default maximum closes.
#[test]
fn twisted_maximum_line_length() {
    let (h, log) = recorder();
    let mut p = LineReceiver::new(h);
    let t = connect(&mut p);
    let mut data = vec![b'x'; MAX_LENGTH + 1];
    data.extend_from_slice(b"\r\nr");
    p.data_received(&data);
    assert!(t.disconnecting());
    assert_eq!(*log.borrow(), vec![Event::Exceeded(data)]);
}

/// Twisted's `test_maximumLineLengthPartialDelimiter`.
#[test]
fn twisted_maximum_line_length_partial_delimiter() {
    let (h, log) = recorder();
    let mut p = LineReceiver::new(h).with_max_length(4);
    let t = connect(&mut p);
    p.data_received(b"xxx");
    p.data_received(b"\r");
    p.data_received(b"\nxxx");
    assert!(!t.disconnecting());
    assert_eq!(lines(&log), vec![b"xxx".to_vec()]);
}

/// Twisted's `test_notQuiteMaximumLineLengthUnfinished`: MAX_LENGTH bytes and half the
/// delimiter do not close.
#[test]
fn twisted_not_quite_maximum_line_length_unfinished() {
    let (h, _log) = recorder();
    let mut p = LineReceiver::new(h);
    let t = connect(&mut p);
    let mut data = vec![b'x'; MAX_LENGTH];
    data.push(b'\r');
    p.data_received(&data);
    assert!(!t.disconnecting());
}

/// Twisted's `test_maximumLineLengthRemaining`: MAX_LENGTH + len(delimiter) bytes without
/// a delimiter close.
#[test]
fn twisted_maximum_line_length_remaining() {
    let (h, _log) = recorder();
    let mut p = LineReceiver::new(h);
    let t = connect(&mut p);
    p.data_received(&vec![b'x'; MAX_LENGTH + 2]);
    assert!(t.disconnecting());
}

/// Twisted's `LineReceiverLineLengthExceededTests`: what `line_length_exceeded` gets.
#[test]
fn twisted_line_length_exceeded_gets_everything_buffered() {
    struct Catcher(Rc<RefCell<Vec<Vec<u8>>>>);
    impl LineHandler for Catcher {
        fn line_received(&mut self, _: &[u8], _: &mut LineControl<'_>) {}
        fn line_length_exceeded(&mut self, data: &[u8], _: &mut LineControl<'_>) {
            self.0.borrow_mut().push(data.to_vec());
        }
    }
    let excessive = vec![b'x'; 6 * 2 + 2];
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        // test_longUnendedLine
        (excessive.clone(), excessive.clone()),
        // test_longLineAfterShortLine
        ([&b"x\r\n"[..], &excessive].concat(), excessive.clone()),
        // test_longLineWithDelimiter
        (
            [&excessive[..], b"\r\n", &excessive].concat(),
            [&excessive[..], b"\r\n", &excessive].concat(),
        ),
        // test_multipleLongLines
        (
            [&excessive[..], b"\r\n", &excessive, b"\r\n"].concat(),
            [&excessive[..], b"\r\n", &excessive, b"\r\n"].concat(),
        ),
    ];
    for (input, expected) in cases {
        let long = Rc::new(RefCell::new(Vec::new()));
        let mut p = LineReceiver::new(Catcher(long.clone())).with_max_length(6);
        let t = connect(&mut p);
        p.data_received(&input);
        assert_eq!(*long.borrow(), vec![expected]);
        assert!(!t.disconnecting(), "the override keeps the connection");
    }
}

/// Echoes each line (without its delimiter) and pauses; keeps the framed transport in
/// its handle so the test can resume it.
struct Consuming(Handle);

impl LineHandler for Consuming {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        *self.0.borrow_mut() = Some(ctl.transport());
    }
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        ctl.write(line);
        ctl.pause_producing();
    }
}

/// Twisted's `ProducerTests.test_pauseResume`, step by step: a handler that echoes each
/// line and pauses gets one line per resume, including lines that arrived while paused.
#[test]
fn twisted_pause_resume() {
    use torsion_testing::ProducerState::{Paused, Producing};
    let handle: Handle = Rc::new(RefCell::new(None));
    let mut p = LineReceiver::new(Consuming(handle.clone()));
    let t = Rc::new(StringTransport::new());
    p.connection_made(t.clone());
    let framed = handle.borrow().clone().unwrap();
    // A partial line: no pause, no line.
    p.data_received(b"hello, ");
    assert_eq!(t.value(), b"");
    assert_eq!(t.producer_state(), Producing);
    // The rest of the line: echoed, then paused.
    p.data_received(b"world\r\n");
    assert_eq!(t.take_value(), b"hello, world");
    assert_eq!(t.producer_state(), Paused);
    // Unpausing delivers nothing more.
    framed.resume_producing();
    assert_eq!(t.value(), b"");
    assert_eq!(t.producer_state(), Producing);
    // Two lines at once: paused after the first.
    p.data_received(b"hello\r\nworld\r\n");
    assert_eq!(t.take_value(), b"hello");
    assert_eq!(t.producer_state(), Paused);
    // Unpausing delivers the waiting line, which pauses again.
    framed.resume_producing();
    assert_eq!(t.take_value(), b"world");
    assert_eq!(t.producer_state(), Paused);
    // A line arriving while paused has no visible effect.
    p.data_received(b"goodbye\r\n");
    assert_eq!(t.value(), b"");
    assert_eq!(t.producer_state(), Paused);
    framed.resume_producing();
    assert_eq!(t.take_value(), b"goodbye");
    assert_eq!(t.producer_state(), Paused);
    // Unpausing delivers nothing more and stays unpaused.
    framed.resume_producing();
    assert_eq!(t.value(), b"");
    assert_eq!(t.producer_state(), Producing);
}

/// The same through the transport the handler kept: each resume delivers exactly one
/// buffered line (the handler pauses again), then nothing.
#[test]
fn resume_delivers_buffered_lines_without_new_data() {
    let handle: Handle = Rc::new(RefCell::new(None));
    let mut p = LineReceiver::new(Consuming(handle.clone()));
    let t = Rc::new(StringTransport::new());
    p.connection_made(t.clone());
    let framed = handle.borrow().clone().unwrap();
    p.data_received(b"one\r\ntwo\r\nthree\r\n");
    assert_eq!(t.take_value(), b"one");
    framed.resume_producing();
    assert_eq!(t.take_value(), b"two");
    framed.resume_producing();
    assert_eq!(t.take_value(), b"three");
    framed.resume_producing();
    assert_eq!(t.take_value(), b"");
    assert_eq!(
        t.producer_state(),
        torsion_testing::ProducerState::Producing
    );
    p.data_received(b"four\r\n");
    assert_eq!(t.take_value(), b"four");
}

/// A resume from inside the handler (while it is delivering) just lets the running
/// loop go on.
#[test]
fn resume_from_inside_the_handler_goes_on() {
    struct PauseResume(Log);
    impl LineHandler for PauseResume {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.borrow_mut().push(Event::Line(line.to_vec()));
            ctl.pause_producing();
            ctl.transport().resume_producing();
        }
    }
    let log = log();
    let mut p = LineReceiver::new(PauseResume(log.clone()));
    connect(&mut p);
    p.data_received(b"a\r\nb\r\nc\r\n");
    assert_eq!(
        lines(&log),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

/// No line after `lose_connection`, even one in the same chunk (CONTRACT D5).
#[test]
fn no_line_after_lose_connection() {
    struct Quit(Log);
    impl LineHandler for Quit {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.borrow_mut().push(Event::Line(line.to_vec()));
            if line == b"quit" {
                ctl.lose_connection();
            }
        }
    }
    let log = log();
    let mut p = LineReceiver::new(Quit(log.clone()));
    let t = connect(&mut p);
    p.data_received(b"a\r\nquit\r\nb\r\n");
    p.data_received(b"c\r\n");
    assert_eq!(lines(&log), vec![b"a".to_vec(), b"quit".to_vec()]);
    assert!(t.disconnecting());
}

// ---------------------------------------------------------------------------------------
// Every chunk boundary.

/// Feeding a stream cut at every single point, and at every pair of points, yields the
/// same lines as feeding it whole.
#[test]
fn every_split_point_yields_the_same_lines() {
    let data = b"alpha\r\n\r\nbeta gamma\r\nx\r\r\n\rdelta\r\npartial";
    let whole = {
        let (h, log) = recorder();
        let mut p = LineReceiver::new(h);
        connect(&mut p);
        p.data_received(data);
        lines(&log)
    };
    assert_eq!(
        whole,
        vec![
            b"alpha".to_vec(),
            Vec::new(),
            b"beta gamma".to_vec(),
            b"x\r".to_vec(),
            b"\rdelta".to_vec()
        ]
    );
    for i in 0..=data.len() {
        for j in i..=data.len() {
            let (h, log) = recorder();
            let mut p = LineReceiver::new(h);
            connect(&mut p);
            feed_cut(&mut p, data, &[i, j]);
            assert_eq!(lines(&log), whole, "cut at {i} and {j}");
            assert_eq!(p.buffered(), b"partial".len());
        }
    }
}

/// A delimiter cut in half across writes (`\r` | `\n`, and a 3-byte one at each point).
#[test]
fn delimiter_cut_in_half_across_writes() {
    let (h, log) = recorder();
    let mut p = LineReceiver::new(h);
    connect(&mut p);
    p.data_received(b"one\r");
    assert!(lines(&log).is_empty());
    p.data_received(b"\ntwo\r");
    p.data_received(b"\n");
    assert_eq!(lines(&log), vec![b"one".to_vec(), b"two".to_vec()]);

    let delimiter = Delimiter::new(*b"<=>").unwrap();
    let data = b"first<=>second<=>";
    for i in 0..=data.len() {
        let (h, log) = recorder();
        let mut p = LineReceiver::new(h).with_delimiter(delimiter.clone());
        connect(&mut p);
        p.data_received(&data[..i]);
        p.data_received(&data[i..]);
        assert_eq!(
            lines(&log),
            vec![b"first".to_vec(), b"second".to_vec()],
            "cut at {i}"
        );
    }
}

/// A line of exactly MAX_LENGTH bytes is delivered whatever the chunking; one byte more
/// is over the limit whatever the chunking.
#[test]
fn length_exactly_at_the_limit_and_one_over() {
    for delimiter in [
        Delimiter::crlf(),
        Delimiter::lf(),
        Delimiter::lf_optional_cr(),
    ] {
        let max = 8;
        let at = [&b"12345678"[..], b"\r\n"].concat();
        let over = [&b"123456789"[..], b"\r\n"].concat();
        for cut in 0..=at.len() {
            let (h, log) = recorder();
            let mut p = LineReceiver::new(h)
                .with_max_length(max)
                .with_delimiter(delimiter.clone());
            let t = connect(&mut p);
            feed_cut(&mut p, &at, &[cut]);
            let expected = if delimiter == Delimiter::lf() {
                b"12345678\r".to_vec() // 9 bytes with its CR: over
            } else {
                b"12345678".to_vec()
            };
            if expected.len() <= max {
                assert_eq!(lines(&log), vec![expected], "{delimiter:?} cut at {cut}");
                assert!(!t.disconnecting());
            } else {
                assert!(lines(&log).is_empty());
                assert!(t.disconnecting(), "{delimiter:?} cut at {cut}");
            }
        }
        for cut in 0..=over.len() {
            let (h, log) = recorder();
            let mut p = LineReceiver::new(h)
                .with_max_length(max)
                .with_delimiter(delimiter.clone());
            let t = connect(&mut p);
            feed_cut(&mut p, &over, &[cut]);
            assert!(lines(&log).is_empty(), "{delimiter:?} cut at {cut}");
            assert!(
                matches!(log.borrow().first(), Some(Event::Exceeded(_))),
                "{delimiter:?} cut at {cut}: line_length_exceeded"
            );
            assert!(t.disconnecting(), "the default closes");
        }
    }
}

/// The default limit is Twisted's 16,384 and the default hook closes.
#[test]
fn default_limit_is_16384_and_closes() {
    struct Lines(Log);
    impl LineHandler for Lines {
        fn line_received(&mut self, line: &[u8], _: &mut LineControl<'_>) {
            self.0.borrow_mut().push(Event::Line(line.to_vec()));
        }
    }
    assert_eq!(MAX_LENGTH, 16_384);
    let log = log();
    let mut p = LineReceiver::new(Lines(log.clone())).with_delimiter(Delimiter::lf());
    let t = connect(&mut p);
    let mut ok = vec![b'a'; 16_384];
    ok.push(b'\n');
    feed_in(&mut p, &ok, 1000);
    assert_eq!(lines(&log).len(), 1);
    assert!(!t.disconnecting());
    let mut long = vec![b'b'; 16_385];
    long.push(b'\n');
    feed_in(&mut p, &long, 1000);
    assert_eq!(lines(&log).len(), 1);
    assert!(t.disconnecting(), "a line of 16,385 bytes closes");
}

/// "LF with optional CR": `\n` and `\r\n` both end lines; only one CR is stripped; lines
/// are sent with `\n`.
#[test]
fn lf_optional_cr_mode() {
    struct Echo;
    impl LineHandler for Echo {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            ctl.send_line(line);
        }
    }
    let mut p = LineReceiver::new(Echo).with_delimiter(Delimiter::lf_optional_cr());
    let t = connect(&mut p);
    p.data_received(b"unix\nwindows\r\ntwo\r\r\n\n\r\n");
    assert_eq!(t.value(), b"unix\nwindows\ntwo\r\n\n\n");
}

/// Raw mode switched on mid-chunk gets the rest of that chunk; line mode switched back
/// mid-chunk cuts the rest into lines.
#[test]
fn mode_switch_mid_chunk() {
    struct Switch(Log);
    impl LineHandler for Switch {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.borrow_mut().push(Event::Line(line.to_vec()));
            if line == b"raw" {
                ctl.set_raw_mode();
            }
        }
        fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
            // Raw data runs until a '#'; the rest goes back to line mode.
            match data.iter().position(|&b| b == b'#') {
                Some(i) => {
                    self.0.borrow_mut().push(Event::Raw(data[..i].to_vec()));
                    ctl.set_line_mode_with(&data[i + 1..]);
                    assert!(ctl.is_line_mode());
                }
                None => self.0.borrow_mut().push(Event::Raw(data.to_vec())),
            }
        }
    }
    let data = b"a\r\nraw\r\nxyz#b\r\nraw\r\n#c\r\n";
    let expected_lines = vec![
        b"a".to_vec(),
        b"raw".to_vec(),
        b"b".to_vec(),
        b"raw".to_vec(),
        b"c".to_vec(),
    ];
    // Whole: the raw data comes in one piece.
    let log1 = log();
    let mut p = LineReceiver::new(Switch(log1.clone()));
    connect(&mut p);
    p.data_received(data);
    assert_eq!(
        *log1.borrow(),
        vec![
            Event::Line(b"a".to_vec()),
            Event::Line(b"raw".to_vec()),
            Event::Raw(b"xyz".to_vec()),
            Event::Line(b"b".to_vec()),
            Event::Line(b"raw".to_vec()),
            Event::Raw(Vec::new()),
            Event::Line(b"c".to_vec()),
        ]
    );
    // Every split: the same lines and the same raw bytes.
    for i in 0..=data.len() {
        let log = log();
        let mut p = LineReceiver::new(Switch(log.clone()));
        connect(&mut p);
        feed_cut(&mut p, data, &[i]);
        assert_eq!(lines(&log), expected_lines, "cut at {i}");
        let raw: Vec<u8> = log
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Event::Raw(r) => Some(r.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(raw, b"xyz", "cut at {i}");
    }
}

/// A handler without `raw_data_received` that switches to raw mode loses the connection
/// instead of dropping the data silently.
#[test]
fn raw_mode_without_a_raw_handler_closes() {
    struct NoRaw;
    impl LineHandler for NoRaw {
        fn line_received(&mut self, _: &[u8], ctl: &mut LineControl<'_>) {
            ctl.set_raw_mode();
        }
    }
    let mut p = LineReceiver::new(NoRaw);
    let t = connect(&mut p);
    p.data_received(b"go raw\r\nbytes");
    assert!(t.disconnecting());
}

/// The delimiter and maximum can change between lines, from the handler.
#[test]
fn delimiter_and_max_change_mid_chunk() {
    struct Changer(Log);
    impl LineHandler for Changer {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.borrow_mut().push(Event::Line(line.to_vec()));
            if line == b"semi" {
                ctl.set_delimiter(Delimiter::new(*b";").unwrap());
                ctl.set_max_length(3);
                assert_eq!(ctl.delimiter().as_bytes(), b";");
                assert_eq!(ctl.max_length(), 3);
            }
        }
    }
    let log = log();
    let mut p = LineReceiver::new(Changer(log.clone()));
    let t = connect(&mut p);
    p.data_received(b"semi\r\na;bc;defg;");
    assert_eq!(
        lines(&log),
        vec![b"semi".to_vec(), b"a".to_vec(), b"bc".to_vec()]
    );
    assert!(t.disconnecting(), "defg is over the new maximum of 3");
}

/// `send_line`, a `LineSender` kept for later, and `unsent_bytes` through the control.
#[test]
fn send_line_and_sender() {
    struct Keep(Rc<RefCell<Option<torsion_toolkit::framing::LineSender>>>);
    impl LineHandler for Keep {
        fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
            ctl.send_line(b"hello");
            *self.0.borrow_mut() = Some(ctl.sender());
        }
        fn line_received(&mut self, _line: &[u8], ctl: &mut LineControl<'_>) {
            // The greeting is still in the StringTransport: the test has not taken it.
            assert_eq!(ctl.unsent_bytes(), 7);
        }
    }
    let sender = Rc::new(RefCell::new(None));
    let mut p = LineReceiver::new(Keep(sender.clone()));
    let t = connect(&mut p);
    assert_eq!(t.value(), b"hello\r\n");
    p.data_received(b"x\r\n");
    let s = sender.borrow().clone().unwrap();
    s.send_line(&[b'y'; 300]);
    assert_eq!(s.unsent_bytes(), 7 + 302);
    assert_eq!(&t.value()[7..], [&[b'y'; 300][..], b"\r\n"].concat());
}

/// Half-close: a half-closeable handler sees the peer's EOF and keeps writing.
#[test]
fn half_closeable_handler_gets_read_connection_lost() {
    struct Half(Log);
    impl LineHandler for Half {
        fn line_received(&mut self, line: &[u8], _: &mut LineControl<'_>) {
            self.0.borrow_mut().push(Event::Line(line.to_vec()));
        }
        fn half_closeable(&self) -> bool {
            true
        }
        fn read_connection_lost(&mut self, ctl: &mut LineControl<'_>) {
            ctl.send_line(b"bye");
            self.0.borrow_mut().push(Event::Raw(b"eof".to_vec()));
        }
    }
    let log = log();
    let mut p = LineReceiver::new(Half(log.clone()));
    let t = connect(&mut p);
    p.data_received(b"last\r\n");
    p.as_half_closeable()
        .expect("half-closeable")
        .read_connection_lost();
    assert_eq!(t.value(), b"bye\r\n");
    assert_eq!(log.borrow().len(), 2);
    let (h, _) = recorder();
    let mut plain = LineReceiver::new(h);
    assert!(plain.as_half_closeable().is_none());
}

/// `connection_lost` reaches the handler; later data is ignored.
#[test]
fn connection_lost_reaches_the_handler() {
    let (h, log) = recorder();
    let mut p = LineReceiver::new(h);
    connect(&mut p);
    p.data_received(b"a\r\nunfinished");
    p.connection_lost(Reason::ConnectionDone);
    assert_eq!(
        *log.borrow(),
        vec![Event::Line(b"a".to_vec()), Event::Lost(true)]
    );
}

/// `handler()` gives the handler back between callbacks.
#[test]
fn handler_is_reachable() {
    let (h, _log) = recorder();
    let mut p = LineReceiver::new(h);
    connect(&mut p);
    p.data_received(b"a\r\n");
    assert!(p.handler().is_some());
    assert!(format!("{p:?}").contains("LineReceiver"));
}

// ---------------------------------------------------------------------------------------
// LineOnlyReceiver.

struct OnlyRecorder(Log);

impl LineOnlyHandler for OnlyRecorder {
    fn line_received(&mut self, line: &[u8], ctl: &mut LineOnlyControl<'_>) {
        self.0.borrow_mut().push(Event::Line(line.to_vec()));
        if line == b"bye" {
            ctl.lose_connection();
        }
    }
}

/// Twisted's `LineOnlyReceiverTests.test_buffer`: one byte at a time.
#[test]
fn twisted_line_only_buffer() {
    let buffer = b"foo\n    bleakness\n    desolation\n    plastic forks\n";
    let log = log();
    let mut p = LineOnlyReceiver::new(OnlyRecorder(log.clone()))
        .with_delimiter(Delimiter::lf())
        .with_max_length(64);
    connect(&mut p);
    feed_in(&mut p, buffer, 1);
    let expected: Vec<Vec<u8>> = buffer
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(lines(&log), expected);
}

/// Twisted's `test_greaterThanMaximumLineLength`.
#[test]
fn twisted_line_only_greater_than_maximum() {
    let log = log();
    let mut p = LineOnlyReceiver::new(OnlyRecorder(log.clone()))
        .with_delimiter(Delimiter::lf())
        .with_max_length(64);
    let t = connect(&mut p);
    let mut data = vec![b'x'; 64 + 1 + 1];
    data.extend_from_slice(b"\r\nr");
    p.data_received(&data);
    assert!(t.disconnecting());
    assert!(lines(&log).is_empty());
}

/// Line-only: every split gives the same lines, and nothing after `lose_connection`.
#[test]
fn line_only_every_split() {
    let data = b"a\r\nbb\r\nbye\r\nignored\r\n";
    for i in 0..=data.len() {
        let log = log();
        let mut p = LineOnlyReceiver::new(OnlyRecorder(log.clone()));
        let t = connect(&mut p);
        feed_cut(&mut p, data, &[i]);
        assert_eq!(
            lines(&log),
            vec![b"a".to_vec(), b"bb".to_vec(), b"bye".to_vec()],
            "cut at {i}"
        );
        assert!(t.disconnecting());
    }
}

// ---------------------------------------------------------------------------------------
// Over the chunking pump, and over a real socket.

/// An echo server and a client that sends many lines; the pump cuts every delivery at
/// random points (seeded), both ways.
#[test]
fn echo_over_the_chunking_pump() {
    let sent: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("line {i} {}", "x".repeat(i % 37)).into_bytes())
        .collect();
    for seed in 1..=20 {
        let log = log();
        let pump = Pump::new(
            Box::new(LineReceiver::new(LineEcho)),
            Box::new(LineReceiver::new(LineClient(log.clone(), sent.clone()))),
        )
        .with_chunking(seed);
        pump.flush();
        assert_eq!(lines(&log), sent, "seed {seed}");
    }
}

/// A proxy registers the framed transport as the producer of the other side: when the
/// other side stops reading, line delivery pauses, and resumes when it drains.
#[test]
fn framed_transport_as_producer_pauses_delivery() {
    struct Forward {
        out: Rc<dyn Transport>,
        log: Log,
    }
    impl LineHandler for Forward {
        fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
            self.out
                .register_producer(torsion_transport::Producer::Push(Rc::new(Wrap(
                    ctl.transport(),
                ))))
                .unwrap();
        }
        fn line_received(&mut self, line: &[u8], _: &mut LineControl<'_>) {
            self.log.borrow_mut().push(Event::Line(line.to_vec()));
            self.out.write(line);
        }
    }
    struct Wrap(Rc<dyn Transport>);
    impl PushProducer for Wrap {
        fn pause_producing(&self) {
            self.0.pause_producing();
        }
        fn resume_producing(&self) {
            self.0.resume_producing();
        }
        fn stop_producing(&self) {
            self.0.stop_producing();
        }
    }
    // The "other side": a loopback whose peer stops reading.
    let (sink, _) = AccumulatingProtocol::new();
    let (other, other_seen) = AccumulatingProtocol::new();
    let pump = Pump::new(Box::new(sink), Box::new(other));
    pump.server().set_buffer_size(10);
    pump.client().pause_producing(); // the far end does not read
    let out: Rc<dyn Transport> = pump.server().clone();
    let log = log();
    let mut p = LineReceiver::new(Forward {
        out,
        log: log.clone(),
    });
    let t = connect(&mut p);
    p.data_received(b"0123456789A\r\nsecond\r\nthird\r\n");
    assert_eq!(
        lines(&log),
        vec![b"0123456789A".to_vec()],
        "paused inside the write"
    );
    assert_eq!(t.producer_state(), torsion_testing::ProducerState::Paused);
    pump.client().resume_producing();
    pump.flush();
    assert_eq!(
        lines(&log),
        vec![
            b"0123456789A".to_vec(),
            b"second".to_vec(),
            b"third".to_vec()
        ]
    );
    assert_eq!(other_seen.data(), b"0123456789Asecondthird");
}

/// Over a real TCP connection: a line server on the reactor, a blocking client that
/// writes a line one byte per write.
#[test]
fn over_tcp_byte_by_byte() {
    use std::io::{Read, Write};
    use torsion_reactor::Reactor;
    use torsion_transport::{ReactorTcp, factory_fn};

    struct Echo;
    impl LineHandler for Echo {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            ctl.send_line(&line.to_ascii_uppercase());
        }
    }
    let reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(
            "127.0.0.1:0".parse().unwrap(),
            factory_fn(|_| {
                Box::new(LineReceiver::new(Echo).with_delimiter(Delimiter::lf_optional_cr()))
            }),
        )
        .unwrap();
    let addr = port.host().socket_addr().expect("a TCP address");
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    client.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for b in b"hello\r\nworld\n" {
        client.write_all(&[*b]).unwrap();
        reactor.iterate(Duration::from_millis(1)).unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 12 && Instant::now() < deadline {
        reactor.iterate(Duration::from_millis(5)).unwrap();
        let mut buf = [0u8; 64];
        match client.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, b"HELLO\nWORLD\n");
    port.stop_listening();
}

// ---------------------------------------------------------------------------------------
// Writes gathered during a callback.

/// A transport that records each `write` call separately.
#[derive(Default)]
struct Writes {
    calls: RefCell<Vec<Vec<u8>>>,
    closing: std::cell::Cell<bool>,
    aborted: std::cell::Cell<bool>,
}

impl torsion_transport::Consumer for Writes {
    fn write(&self, data: &[u8]) {
        self.calls.borrow_mut().push(data.to_vec());
    }
    fn register_producer(
        &self,
        _: torsion_transport::Producer,
    ) -> Result<(), torsion_transport::ProducerError> {
        Ok(())
    }
    fn unregister_producer(&self) {}
}
impl PushProducer for Writes {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {}
    fn stop_producing(&self) {}
}
impl Transport for Writes {
    fn lose_connection(&self) {
        self.closing.set(true);
    }
    fn abort_connection(&self) {
        self.aborted.set(true);
    }
    fn lose_write_connection(&self) {}
    fn host(&self) -> torsion_transport::Address {
        torsion_transport::Address::Memory("host".into())
    }
    fn peer(&self) -> torsion_transport::Address {
        torsion_transport::Address::Memory("peer".into())
    }
    fn unsent_bytes(&self) -> usize {
        0
    }
}

struct EchoQuit;
impl LineHandler for EchoQuit {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        ctl.send_line(b"hi");
        ctl.write(b"there\r\n");
    }
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        match line {
            b"quit" => {
                ctl.send_line(b"bye");
                ctl.lose_connection();
            }
            b"abort" => {
                ctl.send_line(b"never sent");
                ctl.transport().abort_connection();
            }
            b"big" => {
                for _ in 0..100 {
                    ctl.send_line(&[b'b'; 1022]);
                }
            }
            _ => {
                ctl.send_line(line);
                assert!(
                    ctl.unsent_bytes() >= line.len() + 2,
                    "gathered bytes count as unsent"
                );
            }
        }
    }
}

/// The lines a callback sends go out in one write when it returns, in order; a chunk of
/// many lines costs one write.
#[test]
fn writes_of_one_callback_are_gathered_into_one() {
    let t = Rc::new(Writes::default());
    let mut p = LineReceiver::new(EchoQuit);
    p.connection_made(t.clone());
    assert_eq!(*t.calls.borrow(), vec![b"hi\r\nthere\r\n".to_vec()]);
    t.calls.borrow_mut().clear();
    p.data_received(b"a\r\nb\r\nc\r\nd");
    assert_eq!(*t.calls.borrow(), vec![b"a\r\nb\r\nc\r\n".to_vec()]);
    p.data_received(b"\r\nquit\r\nignored\r\n");
    assert_eq!(
        t.calls.borrow()[1],
        b"d\r\nbye\r\n",
        "flushed before lose_connection"
    );
    assert!(t.closing.get());
}

/// Gathered writes are dropped by `abort_connection`, as unsent data is.
#[test]
fn abort_drops_gathered_writes() {
    let t = Rc::new(Writes::default());
    let mut p = LineReceiver::new(EchoQuit);
    p.connection_made(t.clone());
    t.calls.borrow_mut().clear();
    p.data_received(b"x\r\nabort\r\n");
    assert!(t.aborted.get());
    assert!(t.calls.borrow().is_empty(), "{:?}", t.calls.borrow());
}

/// Past 64 KiB, gathered writes are flushed mid-callback (bounded memory, and a producer
/// is still paused inside the write that fills the transport's buffer).
#[test]
fn gathering_is_bounded() {
    let t = Rc::new(Writes::default());
    let mut p = LineReceiver::new(EchoQuit);
    p.connection_made(t.clone());
    t.calls.borrow_mut().clear();
    p.data_received(b"big\r\n");
    let calls = t.calls.borrow();
    assert_eq!(calls.len(), 2, "one flush at 64 KiB, one at the end");
    assert!(calls[0].len() >= 64 * 1024 && calls[0].len() < 64 * 1024 + 1024);
    assert_eq!(calls.concat().len(), 100 * 1024);
}

/// A panicking handler's gathered writes are dropped, and the next delivery writes
/// again at once.
#[test]
fn a_panic_does_not_leave_writes_gathered_forever() {
    struct Boom;
    impl LineHandler for Boom {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            ctl.send_line(line);
            if line == b"boom" {
                panic!("boom");
            }
        }
    }
    let t = Rc::new(Writes::default());
    let mut p = LineReceiver::new(Boom);
    p.connection_made(t.clone());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.data_received(b"boom\r\n");
    }));
    assert!(r.is_err());
    assert!(t.calls.borrow().is_empty());
    // Not delivering any more: a write outside a callback goes straight through.
    let sender = {
        struct Keep(Rc<RefCell<Option<torsion_toolkit::framing::LineSender>>>);
        impl LineHandler for Keep {
            fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
                *self.0.borrow_mut() = Some(ctl.sender());
            }
            fn line_received(&mut self, _: &[u8], _: &mut LineControl<'_>) {}
        }
        let slot = Rc::new(RefCell::new(None));
        let mut q = LineReceiver::new(Keep(slot.clone()));
        q.connection_made(t.clone());
        slot.borrow_mut().take().unwrap()
    };
    sender.send_line(b"direct");
    assert_eq!(t.calls.borrow().last().unwrap(), b"direct\r\n");
    p.data_received(b"fine\r\n");
    assert_eq!(t.calls.borrow().last().unwrap(), b"fine\r\n");
}

/// Pausing or resuming the framed transport after `lose_connection` touches only its own
/// flag: a strict `StringTransport` (which refuses both after a close) does not complain,
/// and nothing more is delivered.
#[test]
fn pause_and_resume_after_the_close_are_quiet() {
    struct Closer(Handle, Log);
    impl LineHandler for Closer {
        fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
            *self.0.borrow_mut() = Some(ctl.transport());
        }
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.1.borrow_mut().push(Event::Line(line.to_vec()));
            ctl.lose_connection();
        }
    }
    let handle: Handle = Rc::new(RefCell::new(None));
    let log = log();
    let mut p = LineReceiver::new(Closer(handle.clone(), log.clone()));
    let t = Rc::new(StringTransport::new()); // strict
    p.connection_made(t.clone());
    p.data_received(b"a\r\nb\r\n");
    let framed = handle.borrow().clone().unwrap();
    framed.pause_producing();
    framed.resume_producing();
    assert_eq!(lines(&log), vec![b"a".to_vec()]);
    assert!(t.disconnecting());
}

/// The flow-controlled echo: the handler registers its own framed transport as the
/// producer of its writes. While the peer does not read, the echo buffer fills, line
/// delivery pauses (lines wait unread), and everything is echoed in order once the peer
/// reads again; over the chunking pump, for several seeds.
#[test]
fn self_registered_echo_pauses_and_resumes_over_the_chunking_pump() {
    struct FlowEcho(Log);
    impl LineHandler for FlowEcho {
        fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
            let me: Rc<dyn PushProducer> = ctl.transport();
            ctl.transport()
                .register_producer(torsion_transport::Producer::Push(me))
                .unwrap();
        }
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.borrow_mut().push(Event::Line(line.to_vec()));
            ctl.send_line(line);
        }
    }
    let sent: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("{i:04} {}", "y".repeat(60)).into_bytes())
        .collect();
    let stream: Vec<u8> = sent
        .iter()
        .flat_map(|l| [&l[..], b"\r\n"].concat())
        .collect();
    for seed in 1..=5 {
        let delivered = log();
        let (client, echoed) = AccumulatingProtocol::new();
        let pump = Pump::new(
            Box::new(LineReceiver::new(FlowEcho(delivered.clone()))),
            Box::new(client),
        )
        .with_chunking(seed);
        pump.server().set_buffer_size(1024);
        pump.client().pause_producing(); // the peer stops reading the echo
        torsion_transport::Consumer::write(&**pump.client(), &stream);
        pump.flush();
        let before = lines(&delivered).len();
        assert!(
            before < sent.len(),
            "seed {seed}: delivery paused while the echo cannot drain ({before} lines)"
        );
        assert!(pump.server().producer_paused(), "seed {seed}");
        pump.client().resume_producing();
        pump.flush();
        assert_eq!(lines(&delivered), sent, "seed {seed}");
        assert_eq!(echoed.data(), stream, "seed {seed}: echoed in order");
    }
}
