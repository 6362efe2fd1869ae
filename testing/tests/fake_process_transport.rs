//! CONTRACT O3: `FakeProcessTransport`, driven with `AccumulatingProcessProtocol`.

use std::rc::Rc;

use torsion_testing::contract::ProbeProducer;
use torsion_testing::{
    AccumulatingProcessProtocol, DEFAULT_FAKE_PID, FakeProcessTransport, ProcessEvent,
    ProcessRecord,
};
use torsion_transport::{
    ChildFd, Consumer, ExitReason, ProcessBuilder, ProcessError, ProcessTransport, Producer,
    ProducerError, PtyOptions, PushProducer, Signal,
};

fn spawn(child: FakeProcessTransport) -> (Rc<FakeProcessTransport>, ProcessRecord) {
    let (protocol, record) = AccumulatingProcessProtocol::new();
    let child = Rc::new(child);
    child.make_connection(Box::new(protocol));
    (child, record)
}

#[test]
fn o3_connection_made_sees_the_pid() {
    let child = FakeProcessTransport::new();
    child.set_pid(Some(77));
    let (_child, record) = spawn(child);
    assert_eq!(
        record.events(),
        vec![ProcessEvent::ConnectionMade { pid: Some(77) }]
    );
    let (child, _) = spawn(FakeProcessTransport::new());
    assert_eq!(child.pid(), Some(DEFAULT_FAKE_PID));
}

#[test]
fn o3_records_writes_per_child_fd() {
    let builder = ProcessBuilder::new("x")
        .child_fd(0, ChildFd::Write)
        .child_fd(1, ChildFd::Read)
        .child_fd(3, ChildFd::Write);
    let (child, _) = spawn(FakeProcessTransport::from_builder(&builder));
    child.write(b"a");
    child.write_sequence(&[b"b", b"c"]);
    child.write_to_child(3, b"three").unwrap();
    child.write_to_child(0, b"d").unwrap();
    assert_eq!(child.stdin(), b"abcd");
    assert_eq!(child.written(3), b"three");
    assert!(child.written(1).is_empty());
}

#[test]
fn o3_write_to_child_on_a_read_fd_is_not_writable() {
    let (child, _) = spawn(FakeProcessTransport::new());
    assert!(matches!(
        child.write_to_child(1, b"x"),
        Err(ProcessError::NotWritable { fd: 1 })
    ));
    assert!(matches!(
        child.write_to_child(9, b"x"),
        Err(ProcessError::NotWritable { fd: 9 })
    ));
    assert!(child.written(1).is_empty());
}

#[test]
fn o3_records_closed_fds_signals_and_lose_connection() {
    let (child, record) = spawn(FakeProcessTransport::new());
    child.close_stdin().unwrap();
    child.close_child_fd(2).unwrap();
    child.close_stdin().unwrap();
    child.signal_process(Signal::Hup).unwrap();
    child.signal_process(Signal::Term).unwrap();
    child.lose_connection();
    assert_eq!(child.closed_fds(), vec![0, 2]);
    assert_eq!(child.signals(), vec![Signal::Hup, Signal::Term]);
    assert_eq!(child.lose_connection_calls(), 1);
    assert_eq!(
        record.events().len(),
        1,
        "transport methods deliver nothing"
    );
}

#[test]
fn o3_scripted_output_and_losses_reach_the_protocol() {
    let (child, record) = spawn(FakeProcessTransport::new());
    child.child_output(1, b"out");
    child.child_output(2, b"err");
    child.close_child(1);
    assert_eq!(record.output(1), b"out");
    assert_eq!(record.output(2), b"err");
    assert_eq!(record.lost_fds(), vec![1]);
    assert_eq!(child.open_fds(), vec![0, 2]);
}

#[test]
fn o3_process_ended_waits_for_every_pipe_and_comes_last() {
    let (child, record) = spawn(FakeProcessTransport::new());
    child.close_child(0);
    child.exit(3);
    assert_eq!(record.exited(), Some(ExitReason::exited(3)));
    assert_eq!(child.pid(), None, "F3: no pid after the exit");
    assert_eq!(record.ended(), None, "F4: pipes 1 and 2 are open");
    child.child_output(1, b"late output");
    child.close_child(2);
    child.close_child(1);
    assert_eq!(record.ended(), Some(ExitReason::exited(3)));
    assert!(matches!(
        record.events().last(),
        Some(ProcessEvent::ProcessEnded(_))
    ));
    record.check_order().unwrap();
    assert!(child.has_ended());
}

#[test]
fn o3_exit_with_no_open_pipe_ends_at_once() {
    let (child, record) = spawn(FakeProcessTransport::new());
    child.close_all_child_fds();
    child.kill(Signal::Kill);
    let reason = ExitReason::killed(Signal::Kill, false);
    let events = record.events();
    assert_eq!(
        &events[events.len() - 2..],
        &[
            ProcessEvent::ProcessExited(reason),
            ProcessEvent::ProcessEnded(reason)
        ]
    );
}

#[test]
fn o3_signal_after_exit_is_exited_already() {
    let (child, _) = spawn(FakeProcessTransport::new());
    child.exit(0);
    assert!(matches!(
        child.signal_process(Signal::Term),
        Err(ProcessError::ExitedAlready)
    ));
    assert!(child.signals().is_empty());
}

#[test]
#[should_panic(expected = "after its connection was lost")]
fn o3_output_after_the_fd_closed_panics() {
    let (child, _) = spawn(FakeProcessTransport::new());
    child.close_child(1);
    child.child_output(1, b"x");
}

#[test]
#[should_panic(expected = "already exited")]
fn o3_exiting_twice_panics() {
    let (child, _) = spawn(FakeProcessTransport::new());
    child.exit(0);
    child.exit(1);
}

#[test]
fn o3_pty_child_has_one_channel() {
    let builder = ProcessBuilder::new("sh").pty(PtyOptions::default());
    let (child, record) = spawn(FakeProcessTransport::from_builder(&builder));
    assert!(child.is_pty());
    child.write(b"ls\n");
    assert_eq!(child.stdin(), b"ls\n");
    assert!(matches!(
        child.write_to_child(1, b"x"),
        Err(ProcessError::Unsupported(_))
    ));
    assert!(matches!(
        child.close_child_fd(0),
        Err(ProcessError::Unsupported(_))
    ));
    assert_eq!(child.open_fds(), vec![1]);
    child.exit(0);
    child.close_child(1);
    assert_eq!(record.ended(), Some(ExitReason::ProcessDone));
}

#[test]
fn o3_producer_registration_and_pause_are_recorded() {
    let (child, _) = spawn(FakeProcessTransport::new());
    let p = ProbeProducer::new();
    child.register_producer(Producer::Push(p.clone())).unwrap();
    assert_eq!(
        child.register_producer(Producer::Push(p)),
        Err(ProducerError::AlreadyRegistered)
    );
    child.pause_producing();
    assert!(child.is_paused());
    child.resume_producing();
    assert!(!child.is_paused());
    child.unregister_producer();
    assert!(child.producer().is_none());
}

/// A protocol that answers output by closing stdin and signalling: transport calls from
/// inside callbacks only record.
struct Reacts {
    transport: Option<Rc<dyn ProcessTransport>>,
}

impl torsion_transport::ProcessProtocol for Reacts {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        self.transport = Some(transport);
    }
    fn out_received(&mut self, _data: &[u8]) {
        if let Some(t) = &self.transport {
            t.close_stdin().unwrap();
            t.signal_process(Signal::Int).unwrap();
            t.lose_connection();
        }
    }
}

#[test]
fn o3_transport_calls_from_callbacks_only_record() {
    let child = Rc::new(FakeProcessTransport::new());
    child.make_connection(Box::new(Reacts { transport: None }));
    child.child_output(1, b"go");
    assert_eq!(child.closed_fds(), vec![0]);
    assert_eq!(child.signals(), vec![Signal::Int]);
    assert_eq!(child.lose_connection_calls(), 1);
    assert_eq!(
        child.open_fds(),
        vec![0, 1, 2],
        "the loss is the script's to report"
    );
}
