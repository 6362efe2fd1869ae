//! [`ChunkProducer`]: a pull producer that writes a fixed number of chunks.

use std::cell::Cell;
use std::fmt;
use std::rc::{Rc, Weak};

use torsion_transport::{Consumer, PullProducer};

/// How many chunks [`ChunkProducer::new`] writes.
pub const DEFAULT_CHUNKS: usize = 10;

/// A [`PullProducer`] that writes one chunk per `resume_producing` — `"chunk 0\n"`,
/// `"chunk 1\n"`, ... — and unregisters itself after the last (ten by default; CONTRACT
/// E2). It holds its consumer weakly, so registering it makes no reference cycle.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::{ChunkProducer, StringTransport};
/// use torsion_transport::{Consumer, Producer};
///
/// let t = Rc::new(StringTransport::new());
/// let p = ChunkProducer::new(&t);
/// t.register_producer(Producer::Pull(p.clone())).unwrap();
/// while t.producer().is_some() {
///     t.producer().unwrap().resume_producing();
/// }
/// assert_eq!(t.value(), p.expected_output());
/// ```
pub struct ChunkProducer<C: Consumer + ?Sized> {
    consumer: Weak<C>,
    count: usize,
    written: Cell<usize>,
    resumes: Cell<usize>,
    stopped: Cell<bool>,
}

impl<C: Consumer + ?Sized> fmt::Debug for ChunkProducer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkProducer")
            .field("count", &self.count)
            .field("written", &self.written.get())
            .field("resumes", &self.resumes.get())
            .field("stopped", &self.stopped.get())
            .finish()
    }
}

impl<C: Consumer + ?Sized> ChunkProducer<C> {
    /// A producer of [`DEFAULT_CHUNKS`] chunks for `consumer`.
    pub fn new(consumer: &Rc<C>) -> Rc<Self> {
        Self::with_count(consumer, DEFAULT_CHUNKS)
    }

    /// A producer of `count` chunks for `consumer`.
    pub fn with_count(consumer: &Rc<C>, count: usize) -> Rc<Self> {
        Rc::new(ChunkProducer {
            consumer: Rc::downgrade(consumer),
            count,
            written: Cell::new(0),
            resumes: Cell::new(0),
            stopped: Cell::new(false),
        })
    }

    /// Chunk number `i`.
    pub fn chunk(i: usize) -> Vec<u8> {
        format!("chunk {i}\n").into_bytes()
    }

    /// Everything this producer writes, concatenated.
    pub fn expected_output(&self) -> Vec<u8> {
        (0..self.count).flat_map(Self::chunk).collect()
    }

    /// How many chunks were written.
    pub fn written(&self) -> usize {
        self.written.get()
    }

    /// How many times `resume_producing` was called.
    pub fn resumes(&self) -> usize {
        self.resumes.get()
    }

    /// True once `stop_producing` was called.
    pub fn stopped(&self) -> bool {
        self.stopped.get()
    }

    /// True once every chunk was written (and the producer unregistered itself).
    pub fn finished(&self) -> bool {
        self.written.get() >= self.count
    }
}

impl<C: Consumer + ?Sized> PullProducer for ChunkProducer<C> {
    fn resume_producing(&self) {
        self.resumes.set(self.resumes.get() + 1);
        if self.stopped.get() || self.finished() {
            return;
        }
        let Some(consumer) = self.consumer.upgrade() else {
            return;
        };
        let i = self.written.get();
        self.written.set(i + 1);
        consumer.write(&Self::chunk(i));
        if self.finished() {
            consumer.unregister_producer();
        }
    }

    fn stop_producing(&self) {
        self.stopped.set(true);
    }
}
