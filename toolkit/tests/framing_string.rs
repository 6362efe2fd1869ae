//! `IntNStringReceiver` (8/16/32-bit) and `NetstringReceiver`: Twisted's `test_basic.py`
//! cases, every chunk boundary, the limits, each framing error.

mod util;

use std::cell::RefCell;
use std::rc::Rc;

use torsion_testing::Pump;
use torsion_toolkit::framing::{
    FramingError, Int8StringReceiver, Int16StringReceiver, Int32StringReceiver, IntNStringReceiver,
    NetstringReceiver, PrefixWidth, STRING_MAX_LENGTH, StringControl, StringHandler,
    send_netstring,
};
use torsion_transport::{Protocol, Reason, Transport};
use util::{Event, Log, connect, feed_cut, feed_in, log};

/// Records strings, overflows, errors and the close; echoes strings when asked.
struct Recorder {
    log: Log,
    echo: bool,
}

impl StringHandler for Recorder {
    fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
        self.log.borrow_mut().push(Event::String(s.to_vec()));
        if self.echo {
            ctl.send_string(s).unwrap();
        }
    }
    fn length_limit_exceeded(&mut self, length: usize, ctl: &mut StringControl<'_>) {
        self.log.borrow_mut().push(Event::LimitExceeded(length));
        ctl.lose_connection();
    }
    fn framing_error(&mut self, error: &FramingError, _ctl: &mut StringControl<'_>) {
        self.log.borrow_mut().push(Event::Error(error.to_string()));
    }
    fn connection_lost(&mut self, reason: Reason) {
        self.log.borrow_mut().push(Event::Lost(reason.is_clean()));
    }
}

fn recorder() -> (Recorder, Log) {
    let log = log();
    (
        Recorder {
            log: log.clone(),
            echo: false,
        },
        log,
    )
}

fn strings(log: &Log) -> Vec<Vec<u8>> {
    log.borrow()
        .iter()
        .filter_map(|e| match e {
            Event::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn prefix<P: PrefixWidth>(len: usize) -> Vec<u8> {
    (len as u32).to_be_bytes()[4 - P::BYTES..].to_vec()
}

// ---------------------------------------------------------------------------------------
// IntN: one generic suite per prefix width (Twisted's IntNTestCaseMixin).

fn intn_suite<P: PrefixWidth>(illegal: &[u8], partials: &[&[u8]]) {
    let strings_sent: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![b'b'; 16]];
    // test_receive: one byte at a time.
    let (h, log) = recorder();
    let mut p = IntNStringReceiver::<P, _>::new(h).with_max_length(50);
    connect(&mut p);
    for s in &strings_sent {
        let framed = [prefix::<P>(s.len()), s.clone()].concat();
        feed_in(&mut p, &framed, 1);
    }
    assert_eq!(strings(&log), strings_sent, "{}-byte prefix", P::BYTES);

    // test_partial: nothing is delivered.
    for partial in partials {
        let (h, log) = recorder();
        let mut p = IntNStringReceiver::<P, _>::new(h).with_max_length(50);
        connect(&mut p);
        feed_in(&mut p, partial, 1);
        assert!(strings(&log).is_empty(), "partial {partial:?}");
    }

    // test_illegal: a length over MAX_LENGTH (50) closes.
    let (h, _log) = recorder();
    let mut p = IntNStringReceiver::<P, _>::new(h).with_max_length(50);
    let t = connect(&mut p);
    feed_in(&mut p, illegal, 1);
    assert!(t.disconnecting(), "illegal {illegal:?}");

    // test_send.
    let (h, _log) = recorder();
    let mut p = IntNStringReceiver::<P, _>::new(h);
    let t = connect(&mut p);
    p.data_received(&[prefix::<P>(0), Vec::new()].concat());
    struct Sender;
    impl StringHandler for Sender {
        fn connection_made(&mut self, ctl: &mut StringControl<'_>) {
            ctl.send_string(&[b'b'; 16]).unwrap();
        }
        fn string_received(&mut self, _: &[u8], _: &mut StringControl<'_>) {}
    }
    let mut s = IntNStringReceiver::<P, _>::new(Sender);
    let ts = connect(&mut s);
    assert_eq!(ts.value(), [prefix::<P>(16), vec![b'b'; 16]].concat());
    drop(t);

    // test_lengthLimitExceeded: the hook gets the announced length.
    let (h, log) = recorder();
    let mut p = IntNStringReceiver::<P, _>::new(h).with_max_length(10);
    let t = connect(&mut p);
    p.data_received(&prefix::<P>(11));
    assert_eq!(*log.borrow(), vec![Event::LimitExceeded(11)]);
    assert!(t.disconnecting(), "the default closes");

    // test_longStringNotDelivered.
    let (h, log) = recorder();
    let mut p = IntNStringReceiver::<P, _>::new(h).with_max_length(10);
    connect(&mut p);
    p.data_received(&[prefix::<P>(11), vec![b'x'; 11]].concat());
    assert!(strings(&log).is_empty());

    // Exactly at the limit is delivered, whatever the split.
    let framed = [prefix::<P>(10), vec![b'y'; 10], prefix::<P>(0)].concat();
    for cut in 0..=framed.len() {
        let (h, log) = recorder();
        let mut p = IntNStringReceiver::<P, _>::new(h).with_max_length(10);
        let t = connect(&mut p);
        feed_cut(&mut p, &framed, &[cut]);
        assert_eq!(
            strings(&log),
            vec![vec![b'y'; 10], Vec::new()],
            "cut at {cut}"
        );
        assert!(!t.disconnecting());
    }
    // One over is refused, whatever the split.
    let framed = [prefix::<P>(11), vec![b'y'; 11]].concat();
    for cut in 0..=framed.len() {
        let (h, log) = recorder();
        let mut p = IntNStringReceiver::<P, _>::new(h).with_max_length(10);
        let t = connect(&mut p);
        feed_cut(&mut p, &framed, &[cut]);
        assert!(strings(&log).is_empty(), "cut at {cut}");
        assert!(t.disconnecting(), "cut at {cut}");
    }
}

#[test]
fn twisted_int32() {
    intn_suite::<torsion_toolkit::framing::Prefix32>(
        b"\x10\x00\x00\x00aaaaaa",
        &[b"\x00\x00\x00", b"hello there", b""],
    );
}

#[test]
fn twisted_int16() {
    intn_suite::<torsion_toolkit::framing::Prefix16>(
        b"\x10\x00aaaaaa",
        &[b"\x00", b"hello there", b""],
    );
}

#[test]
fn twisted_int8() {
    intn_suite::<torsion_toolkit::framing::Prefix8>(b"\x00\x00aaaaaa", &[b"\x08", b"dzadz", b""]);
}

/// Twisted's `test_data` for each width: the exact bytes.
#[test]
fn twisted_int_data() {
    let (h, log) = recorder();
    let mut p = Int32StringReceiver::new(h);
    connect(&mut p);
    p.data_received(b"\x00\x00\x00\x04ubar");
    assert_eq!(strings(&log), vec![b"ubar".to_vec()]);
    let (h, log) = recorder();
    let mut p = Int16StringReceiver::new(h);
    connect(&mut p);
    p.data_received(b"\x00\x04ubar");
    assert_eq!(strings(&log), vec![b"ubar".to_vec()]);
    let (h, log) = recorder();
    let mut p = Int8StringReceiver::new(h);
    connect(&mut p);
    p.data_received(b"\x04ubar");
    assert_eq!(strings(&log), vec![b"ubar".to_vec()]);
}

/// Twisted's `test_tooLongSend`: a typed error, and nothing written.
#[test]
fn twisted_too_long_send() {
    struct TrySend(Rc<RefCell<Vec<Result<(), FramingError>>>>, usize);
    impl StringHandler for TrySend {
        fn connection_made(&mut self, ctl: &mut StringControl<'_>) {
            let n = self.1;
            self.0.borrow_mut().push(ctl.send_string(&vec![b'b'; n]));
            self.0
                .borrow_mut()
                .push(ctl.send_string(&vec![b'b'; n - 1]));
        }
        fn string_received(&mut self, _: &[u8], _: &mut StringControl<'_>) {}
    }
    let results = Rc::new(RefCell::new(Vec::new()));
    let mut p = Int8StringReceiver::new(TrySend(results.clone(), 256));
    let t = connect(&mut p);
    assert_eq!(
        *results.borrow(),
        vec![
            Err(FramingError::StringTooLong {
                length: 256,
                prefix_bytes: 1
            }),
            Ok(())
        ]
    );
    assert_eq!(
        t.value().len(),
        1 + 255,
        "only the string that fits is written"
    );
    assert_eq!(t.value()[0], 255);
    let msg = results.borrow()[0].clone().unwrap_err().to_string();
    assert!(msg.contains("8-bit") && msg.contains("256"), "{msg}");

    let results = Rc::new(RefCell::new(Vec::new()));
    let mut p = Int16StringReceiver::new(TrySend(results.clone(), 65_536));
    connect(&mut p);
    assert!(matches!(
        results.borrow()[0],
        Err(FramingError::StringTooLong {
            length: 65_536,
            prefix_bytes: 2
        })
    ));
    assert_eq!(results.borrow()[1], Ok(()));
}

/// The default maximum is Twisted's 99,999.
#[test]
fn default_string_max_length() {
    assert_eq!(STRING_MAX_LENGTH, 99_999);
    let (h, log) = recorder();
    let mut p = Int32StringReceiver::new(h);
    let t = connect(&mut p);
    p.data_received(
        &[
            prefix::<torsion_toolkit::framing::Prefix32>(99_999),
            vec![0; 99_999],
        ]
        .concat(),
    );
    assert_eq!(strings(&log).len(), 1);
    p.data_received(&prefix::<torsion_toolkit::framing::Prefix32>(100_000));
    assert!(t.disconnecting());
}

/// A handler that keeps the connection after an over-long length is called again with
/// the next bytes (Twisted keeps the data from that prefix on).
#[test]
fn length_limit_exceeded_override_keeps_the_data() {
    struct Keep(Log);
    impl StringHandler for Keep {
        fn string_received(&mut self, s: &[u8], _: &mut StringControl<'_>) {
            self.0.borrow_mut().push(Event::String(s.to_vec()));
        }
        fn length_limit_exceeded(&mut self, length: usize, _: &mut StringControl<'_>) {
            self.0.borrow_mut().push(Event::LimitExceeded(length));
        }
    }
    let log = log();
    let mut p = Int8StringReceiver::new(Keep(log.clone())).with_max_length(3);
    let t = connect(&mut p);
    p.data_received(b"\x01a\x05");
    p.data_received(b"x");
    assert_eq!(
        *log.borrow(),
        vec![
            Event::String(b"a".to_vec()),
            Event::LimitExceeded(5),
            Event::LimitExceeded(5)
        ]
    );
    assert!(!t.disconnecting());
    assert_eq!(p.buffered(), 2);
}

/// Pausing stops delivery of buffered strings too; resuming delivers them.
#[test]
fn intn_pause_and_resume() {
    struct OnePerResume(Log, Rc<RefCell<Option<Rc<dyn Transport>>>>);
    impl StringHandler for OnePerResume {
        fn connection_made(&mut self, ctl: &mut StringControl<'_>) {
            *self.1.borrow_mut() = Some(ctl.transport());
        }
        fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
            self.0.borrow_mut().push(Event::String(s.to_vec()));
            ctl.pause_producing();
        }
    }
    let log = log();
    let handle = Rc::new(RefCell::new(None));
    let mut p = Int8StringReceiver::new(OnePerResume(log.clone(), handle.clone()));
    connect(&mut p);
    p.data_received(b"\x01a\x01b\x01c");
    assert_eq!(strings(&log), vec![b"a".to_vec()]);
    let t = handle.borrow().clone().unwrap();
    t.resume_producing();
    assert_eq!(strings(&log), vec![b"a".to_vec(), b"b".to_vec()]);
    t.resume_producing();
    t.resume_producing();
    assert_eq!(strings(&log).len(), 3);
}

/// Every split of a stream of strings of every width gives the same strings.
#[test]
fn intn_every_split() {
    let payloads: Vec<Vec<u8>> = vec![b"".to_vec(), b"x".to_vec(), b"hello".to_vec(), vec![7; 40]];
    fn check<P: PrefixWidth>(payloads: &[Vec<u8>]) {
        let stream: Vec<u8> = payloads
            .iter()
            .flat_map(|s| [prefix::<P>(s.len()), s.clone()].concat())
            .collect();
        for i in 0..=stream.len() {
            for j in (i..=stream.len()).step_by(3) {
                let (h, log) = recorder();
                let mut p = IntNStringReceiver::<P, _>::new(h);
                connect(&mut p);
                feed_cut(&mut p, &stream, &[i, j]);
                assert_eq!(strings(&log), payloads, "{}: cut at {i}, {j}", P::BYTES);
            }
        }
    }
    check::<torsion_toolkit::framing::Prefix8>(&payloads);
    check::<torsion_toolkit::framing::Prefix16>(&payloads);
    check::<torsion_toolkit::framing::Prefix32>(&payloads);
}

// ---------------------------------------------------------------------------------------
// Netstrings.

fn netstring() -> (
    NetstringReceiver<Recorder>,
    Log,
    Rc<torsion_testing::StringTransport>,
) {
    let log = log();
    let mut p = NetstringReceiver::new(Recorder {
        log: log.clone(),
        echo: true,
    })
    .with_max_length(50);
    let t = connect(&mut p);
    (p, log, t)
}

/// Twisted's `NetstringReceiverTests.test_buffer`: packet sizes 1..10.
#[test]
fn twisted_netstring_buffer() {
    let sent: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        b"world".to_vec(),
        b"how".to_vec(),
        b"are".to_vec(),
        b"you123".to_vec(),
        b":today".to_vec(),
        vec![b'a'; 515],
    ];
    let out: Vec<u8> = {
        let t = torsion_testing::StringTransport::new();
        for s in &sent {
            send_netstring(&t, s);
        }
        t.value()
    };
    for size in 1..10 {
        let log = log();
        let mut p = NetstringReceiver::new(Recorder {
            log: log.clone(),
            echo: false,
        })
        .with_max_length(699);
        connect(&mut p);
        feed_in(&mut p, &out, size);
        assert_eq!(strings(&log), sent, "packet size {size}");
    }
}

/// Twisted's small netstring cases.
#[test]
fn twisted_netstring_cases() {
    for (input, expected) in [
        (&b"0:,"[..], vec![Vec::new()]),
        (b"1:a,", vec![b"a".to_vec()]),
        (b"2:ab,", vec![b"ab".to_vec()]),
        (b"4:1:a,,", vec![b"1:a,".to_vec()]),
    ] {
        let (mut p, log, t) = netstring();
        p.data_received(input);
        assert_eq!(strings(&log), expected, "{input:?}");
        assert_eq!(t.value(), input, "echoed");
        assert!(!t.disconnecting());
    }
    // Portions.
    for parts in [
        vec![&b"4:aa"[..], b"aa,"],
        vec![b"1", b"0:01234", b"56789", b","],
        vec![b"2", b":", b"a", b"b", b","],
    ] {
        let (mut p, log, _t) = netstring();
        for part in &parts {
            p.data_received(part);
        }
        assert_eq!(strings(&log).len(), 1, "{parts:?}");
        assert_eq!(
            strings(&log)[0],
            parts
                .concat()
                .splitn(2, |&b| b == b':')
                .nth(1)
                .unwrap()
                .split_last()
                .unwrap()
                .1
        );
    }
    // test_receiveTwoNetstrings.
    let (mut p, log, _t) = netstring();
    p.data_received(b"1:a,1");
    assert_eq!(strings(&log), vec![b"a".to_vec()]);
    p.data_received(b":b,");
    assert_eq!(strings(&log), vec![b"a".to_vec(), b"b".to_vec()]);
}

/// Twisted's illegal netstrings (test_illegal, one byte at a time, and the
/// test_moreDataThanSpecified... family): each closes with the right typed error.
#[test]
fn twisted_netstring_illegal() {
    let bad_length = |b: u8| FramingError::NetstringBadLength { found: b }.to_string();
    let too_long = FramingError::NetstringTooLong { max_length: 50 }.to_string();
    let comma = |b: u8| FramingError::NetstringMissingComma { found: b }.to_string();
    let cases: Vec<(&[u8], String)> = vec![
        (b"9999999999999999999999", too_long.clone()),
        (b"abc", bad_length(b'a')),
        (b"4:abcde", comma(b'e')),
        (
            b"51:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab,",
            too_long.clone(),
        ),
        (b"2:aaa,", comma(b'a')),
        (b"0:a,", comma(b'a')),
        (b":aaa,", bad_length(b':')),
        (b"3aaa,", bad_length(b'a')),
        (b"aaa,", bad_length(b'a')),
        (b"aaa", bad_length(b'a')),
        (b"007:", bad_length(b'0')),
        (
            b"12:",
            FramingError::NetstringTooLong { max_length: 11 }.to_string(),
        ),
    ];
    for (input, error) in cases {
        for size in [1, input.len()] {
            let log = log();
            let max = if input == b"12:" { 11 } else { 50 };
            let mut p = NetstringReceiver::new(Recorder {
                log: log.clone(),
                echo: false,
            })
            .with_max_length(max);
            let t = connect(&mut p);
            feed_in(&mut p, input, size);
            assert!(t.disconnecting(), "{input:?} in chunks of {size}");
            assert_eq!(
                *log.borrow(),
                vec![Event::Error(error.clone())],
                "{input:?} in chunks of {size}"
            );
        }
    }
}

/// Twisted's `_consumeLength` border cases: the length equal to MAX_LENGTH is accepted.
#[test]
fn netstring_length_at_the_limit() {
    let log = log();
    let mut p = NetstringReceiver::new(Recorder {
        log: log.clone(),
        echo: false,
    })
    .with_max_length(12);
    let t = connect(&mut p);
    p.data_received(b"12:abcdefghijkl,");
    assert_eq!(strings(&log), vec![b"abcdefghijkl".to_vec()]);
    assert!(!t.disconnecting());
}

/// Nothing is delivered after a framing error, even valid netstrings that follow.
#[test]
fn nothing_after_a_netstring_error() {
    let (mut p, log, t) = netstring();
    p.data_received(b"1:a,x1:b,");
    p.data_received(b"1:c,");
    assert_eq!(strings(&log), vec![b"a".to_vec()]);
    assert!(t.disconnecting());
}

/// Every split of a netstring stream gives the same strings.
#[test]
fn netstring_every_split() {
    let stream = b"5:hello,0:,3:a:,,1:,,";
    let expected = vec![
        b"hello".to_vec(),
        Vec::new(),
        b"a:,".to_vec(),
        b",".to_vec(),
    ];
    for i in 0..=stream.len() {
        for j in i..=stream.len() {
            let (mut p, log, _t) = netstring();
            feed_cut(&mut p, stream, &[i, j]);
            assert_eq!(strings(&log), expected, "cut at {i}, {j}");
        }
    }
}

/// A netstring echo over the chunking pump.
#[test]
fn netstring_over_the_chunking_pump() {
    struct Client(Log, Vec<Vec<u8>>);
    impl StringHandler for Client {
        fn connection_made(&mut self, ctl: &mut StringControl<'_>) {
            for s in &self.1 {
                ctl.send_string(s).unwrap();
            }
        }
        fn string_received(&mut self, s: &[u8], _: &mut StringControl<'_>) {
            self.0.borrow_mut().push(Event::String(s.to_vec()));
        }
    }
    let sent: Vec<Vec<u8>> = (0..100).map(|i| vec![b'0' + (i % 10) as u8; i]).collect();
    for seed in 1..=10 {
        let log = log();
        let server = NetstringReceiver::new(Recorder {
            log: util::log(),
            echo: true,
        });
        let pump = Pump::new(
            Box::new(server),
            Box::new(NetstringReceiver::new(Client(log.clone(), sent.clone()))),
        )
        .with_chunking(seed);
        pump.flush();
        assert_eq!(strings(&log), sent, "seed {seed}");
    }
}
