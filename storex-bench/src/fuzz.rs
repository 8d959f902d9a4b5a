//! The fuzz scenario (issue 10, "Proof"): generated frames fed through the session core over an
//! in-memory transport, and generated state pairs fed through `diff` and `apply`.
//!
//! **Frames.** Each worker thread runs a current-thread runtime and a `LocalSet` with an
//! [`Endpoint`] of its own; every connection is [`Accepted::serve`](storex::Accepted::serve)d over
//! an in-memory [`Transport`] (two channels). The client side generates one input at a time from
//! a seeded [`TestRng`] and a model of the connection (its session, the stores it holds at which
//! epoch and version, its newest resume token, whether a message other than a ping came yet):
//! valid joins, mutations (well typed, of the wrong arity or type, of stores not joined, naming
//! another session), pings, resumes (forged, expired, of an ended session, of the connection's
//! own session, of a detached session, not first), replays of mutations after a resume; and
//! hostile ones: valid frames truncated or with bytes flipped, inserted, deleted or duplicated,
//! valid JSON of the wrong shapes and types, nesting up to 30,000 levels, huge numbers, unknown
//! and missing store names, frames at the size limit, binary frames, transport violations,
//! activity, client closes and dropped connections. Most connections are short and hostile; some
//! are long and calm, and some of those send batches of 2 to 8 inputs before reading, which the
//! server reads ahead while it runs one.
//!
//! **The oracle.** Every text frame gets exactly one answer or a close; a close has a code of
//! PROTOCOL.md's table other than 1011, and then the connection ends (nothing more is sent, the
//! serving task finishes). A valid frame's answer is checked against the model: its type, its
//! `request`, its `session`, versions that move by one exactly when the diff is not empty, error
//! answers that leave the version unchanged, the refusal sentence of each forged resume, a
//! resume's catch-up, a replay's `replayed` flag and original version. Frames the model cannot
//! predict (mutated bytes, wrong shapes) may get any answer or any listed close. In a batch, the
//! answers come in order, each of its frame's type with its request id, until a close that an
//! input of the batch at or after the first unanswered one may cause. A panic anywhere
//! (a panic hook counts them per thread), a hang (nothing within the patience) or a close code
//! outside the table is a failure; a failure is printed with the connection's frame sequence,
//! shrunk when it does not depend on the model.
//!
//! **Diffs.** proptest strategies generate pairs of JSON values (the new one an edit of the old
//! one, or unrelated) and pairs of a typed state; the property is that `apply(old, diff(old,
//! new))` gives `new` (as JSON text too: `0.0` is not `-0.0`) and that `diff(x, x)` is empty. Random
//! changes applied to random values must give `Ok` or an error, never a panic. A failing pair is
//! shrunk by proptest.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storex::diff::{apply, diff, Change, PathSegment};

use crate::json_pairs::{json, json_pair, key};
use storex::transport::{Close, Disconnected, Incoming, Transport};
use storex::{Config, Diff, Endpoint, Extensions, Params, Reply, Session, Store};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::{JoinHandle, LocalSet};

// ---------------------------------------------------------------------------------------------
// The stores the fuzz joins.

/// The counter store's name.
pub const COUNTER: &str = "Fuzz.Counter";
/// The board store's name.
pub const BOARD: &str = "Fuzz.Board";
/// The gate store's name (its async init refuses joins without the password).
pub const GATE: &str = "Fuzz.Gate";
/// Every store of the fuzz.
pub const STORES: [&str; 3] = [COUNTER, BOARD, GATE];

/// Integers, strings, an error, an async mutation; arithmetic that cannot overflow.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Fuzz.Counter")]
pub struct FuzzCounter {
    /// The counted value.
    pub value: i64,
    /// A label set by `label`.
    pub label: String,
    /// How many `tick`s ran.
    pub ticks: u64,
}

#[storex::mutations]
impl FuzzCounter {
    #[init]
    fn init(params: &Params) -> Self {
        FuzzCounter {
            value: params.get("start").unwrap_or(0),
            label: String::new(),
            ticks: 0,
        }
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.value = self.value.wrapping_add(1);
    }

    #[mutation("add")]
    fn add(&mut self, by: i64) -> Reply<i64> {
        self.value = self.value.saturating_add(by);
        Reply(self.value)
    }

    #[mutation("label")]
    fn label(&mut self, label: String) -> Reply<usize> {
        self.label = label;
        Reply(self.label.chars().count())
    }

    /// An error for odd numbers.
    #[mutation("even")]
    fn even(&mut self, number: u8) -> Result<(), String> {
        if number % 2 == 1 {
            return Err(format!("{number} is odd"));
        }
        self.value = i64::from(number);
        Ok(())
    }

    /// Changes the state, then fails: the state must be rolled back.
    #[mutation("fail")]
    fn fail(&mut self, why: String) -> Result<(), String> {
        self.value = self.value.wrapping_add(1_000);
        self.label.push('!');
        Err(why)
    }

    #[mutation("tick")]
    async fn tick(&mut self, yields: u8) -> Reply<u64> {
        for _ in 0..yields % 4 {
            tokio::task::yield_now().await;
        }
        self.ticks = self.ticks.wrapping_add(1);
        Reply(self.ticks)
    }
}

/// A card of the board: a nested struct argument.
#[derive(Diff, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Card {
    /// Its title.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
    /// Its estimate.
    pub points: Option<u16>,
}

/// A position: floats.
#[derive(Diff, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Point {
    /// Across.
    pub x: f64,
    /// Down.
    pub y: f64,
}

/// Nested structs, vectors, maps, floats and free JSON.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Fuzz.Board")]
pub struct FuzzBoard {
    /// At most [`MAX_CARDS`] cards.
    pub cards: Vec<Card>,
    /// Tags and their weights.
    pub tags: BTreeMap<String, u32>,
    /// Where the cursor is.
    pub cursor: Point,
    /// Whatever `put` was given.
    pub meta: Value,
}

/// The most cards a board keeps (the oldest go first).
pub const MAX_CARDS: usize = 32;

#[storex::mutations]
impl FuzzBoard {
    #[init]
    fn init() -> Self {
        FuzzBoard {
            cards: Vec::new(),
            tags: BTreeMap::new(),
            cursor: Point { x: 0.0, y: 0.0 },
            meta: Value::Null,
        }
    }

    #[mutation("add_card")]
    fn add_card(&mut self, card: Card) -> Reply<usize> {
        self.cards.push(card);
        if self.cards.len() > MAX_CARDS {
            self.cards.remove(0);
        }
        Reply(self.cards.len())
    }

    #[mutation("set_cards")]
    fn set_cards(&mut self, mut cards: Vec<Card>) {
        cards.truncate(MAX_CARDS);
        self.cards = cards;
    }

    /// An error when there is no such card.
    #[mutation("toggle")]
    fn toggle(&mut self, index: usize) -> Result<(), String> {
        let card = self
            .cards
            .get_mut(index)
            .ok_or_else(|| format!("no card {index}"))?;
        card.done = !card.done;
        Ok(())
    }

    #[mutation("tag")]
    fn tag(&mut self, name: String, weight: u32) {
        self.tags.insert(name, weight);
    }

    #[mutation("untag")]
    fn untag(&mut self, name: String) -> Reply<bool> {
        Reply(self.tags.remove(&name).is_some())
    }

    #[mutation("move_to")]
    fn move_to(&mut self, to: Point) {
        self.cursor = to;
    }

    #[mutation("put")]
    fn put(&mut self, meta: Value) {
        self.meta = meta;
    }

    #[mutation("clear")]
    fn clear(&mut self) {
        self.cards.clear();
        self.tags.clear();
    }
}

/// A store whose async init refuses a join without `{"pass":"open"}`.
#[derive(Store, Serialize, Clone, Debug)]
#[store(name = "Fuzz.Gate")]
pub struct FuzzGate {
    /// Who opened it.
    pub name: String,
    /// How many visits.
    pub visits: u32,
}

#[storex::mutations]
impl FuzzGate {
    #[init]
    async fn init(session: &Session, params: &Params) -> Result<Self, String> {
        tokio::task::yield_now().await;
        match params.get::<String>("pass") {
            Some(pass) if pass == "open" => Ok(FuzzGate {
                name: session.id().chars().take(4).collect(),
                visits: 0,
            }),
            _ => Err("Refused by init.".into()),
        }
    }

    #[mutation("visit")]
    async fn visit(&mut self) -> Reply<u32> {
        tokio::task::yield_now().await;
        self.visits = self.visits.wrapping_add(1);
        Reply(self.visits)
    }

    #[mutation("rename")]
    fn rename(&mut self, name: String) {
        self.name = name;
    }
}

fn our_store(name: &str) -> Option<&'static str> {
    STORES.iter().copied().find(|store| *store == name)
}

// ---------------------------------------------------------------------------------------------
// Options and report.

/// What to run.
#[derive(Debug, Clone)]
pub struct Fuzz {
    /// Frame inputs (every input a connection receives: text frames, binary frames, violations,
    /// activity, closes and drops).
    pub frames: u64,
    /// Diff inputs (state pairs through diff and apply, random changes through apply).
    pub diffs: u64,
    /// The seed everything is generated from.
    pub seed: u64,
    /// Worker threads (each with its own runtime and endpoint).
    pub workers: usize,
    /// How long an answer may take before it counts as a hang.
    pub patience: Duration,
    /// Stop after this many failures.
    pub max_failures: usize,
}

impl Fuzz {
    /// `inputs` in all, four fifths of them frames, on one worker per core.
    pub fn new(inputs: u64, seed: u64) -> Self {
        let diffs = inputs / 5;
        Self {
            frames: inputs - diffs,
            diffs,
            seed,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            patience: Duration::from_secs(10),
            max_failures: 10,
        }
    }
}

/// The kinds of frame inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A valid ping.
    Ping,
    /// A valid join (of a store whose init may refuse it).
    Join,
    /// A valid mutation: well typed, of a joined store or not.
    Mutation,
    /// A mutation of an unknown name, the wrong arity or an argument of the wrong type.
    WrongMutation,
    /// A mutation whose `session` is not the connection's.
    OtherSession,
    /// A resume, first, with a forged token (random, of another session, garbage...).
    ResumeForged,
    /// A resume, first, with an expired token the server signed.
    ResumeExpired,
    /// A resume, first, of a session that has ended.
    ResumeEnded,
    /// A resume, first, of the connection's own session.
    ResumeOwn,
    /// A resume, first, of a detached session with its real token.
    ResumeDetached,
    /// A resume that is not the first message.
    ResumeNotFirst,
    /// A mutation sent again after a resume, with its original request id.
    Replay,
    /// A ping padded to the frame limit, or one byte over.
    AtTheLimit,
    /// Valid JSON of the wrong shapes and types.
    WrongShape,
    /// A valid frame cut at a random byte.
    Truncated,
    /// A valid frame with bytes flipped, inserted, deleted or duplicated.
    Mutated,
    /// Nesting from 100 to 30,000 levels.
    Deep,
    /// Numbers beyond i64, u64 and f64.
    HugeNumber,
    /// A join or mutation of a store no store has.
    UnknownStore,
    /// A join or mutation without a store.
    MissingStore,
    /// A binary frame.
    Binary,
    /// A transport violation (not UTF-8, too large, protocol error).
    Violation,
    /// Activity (a WebSocket ping or pong).
    Activity,
    /// The client closes.
    ClientClose,
    /// The connection drops without a close.
    Drop,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 25] = [
        Kind::Ping,
        Kind::Join,
        Kind::Mutation,
        Kind::WrongMutation,
        Kind::OtherSession,
        Kind::ResumeForged,
        Kind::ResumeExpired,
        Kind::ResumeEnded,
        Kind::ResumeOwn,
        Kind::ResumeDetached,
        Kind::ResumeNotFirst,
        Kind::Replay,
        Kind::AtTheLimit,
        Kind::WrongShape,
        Kind::Truncated,
        Kind::Mutated,
        Kind::Deep,
        Kind::HugeNumber,
        Kind::UnknownStore,
        Kind::MissingStore,
        Kind::Binary,
        Kind::Violation,
        Kind::Activity,
        Kind::ClientClose,
        Kind::Drop,
    ];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ping => "ping",
            Kind::Join => "join",
            Kind::Mutation => "mutation",
            Kind::WrongMutation => "mutation: wrong name, arity or type",
            Kind::OtherSession => "mutation naming another session",
            Kind::ResumeForged => "resume: forged token",
            Kind::ResumeExpired => "resume: expired token",
            Kind::ResumeEnded => "resume: ended session",
            Kind::ResumeOwn => "resume: own session",
            Kind::ResumeDetached => "resume: detached session, real token",
            Kind::ResumeNotFirst => "resume not first",
            Kind::Replay => "mutation replayed after a resume",
            Kind::AtTheLimit => "frame at the size limit (±2 bytes)",
            Kind::WrongShape => "valid JSON, wrong shape or types",
            Kind::Truncated => "truncated",
            Kind::Mutated => "bytes mutated",
            Kind::Deep => "deeply nested (100 to 30,000)",
            Kind::HugeNumber => "huge numbers",
            Kind::UnknownStore => "unknown store",
            Kind::MissingStore => "missing store",
            Kind::Binary => "binary frame",
            Kind::Violation => "transport violation",
            Kind::Activity => "activity",
            Kind::ClientClose => "client close",
            Kind::Drop => "connection dropped",
        }
    }

    /// Its place in [`Kind::ALL`] and in the counts.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the frames got, per kind.
#[derive(Debug, Clone, Default)]
pub struct FrameCounts {
    /// Inputs, by [`Kind::index`].
    pub inputs: [u64; Kind::ALL.len()],
    /// Inputs answered with a frame.
    pub answered: [u64; Kind::ALL.len()],
    /// Inputs answered by a close, by kind and code.
    pub closes: BTreeMap<(Kind, u16), u64>,
    /// Connections opened.
    pub connections: u64,
    /// Resumes that took a session back.
    pub resumed: u64,
    /// Answers to mutations of held stores whose epoch and version were checked.
    pub versions_checked: u64,
    /// Inputs sent in a batch behind others (read ahead by the server) that a close of the
    /// connection cut short before their turn, by kind.
    pub cut: [u64; Kind::ALL.len()],
    /// Batches of 2 to 8 inputs sent before reading any answer.
    pub batches: u64,
}

impl FrameCounts {
    /// All frame inputs.
    pub fn total(&self) -> u64 {
        self.inputs.iter().sum()
    }

    /// All inputs answered with a frame.
    pub fn total_answered(&self) -> u64 {
        self.answered.iter().sum()
    }

    /// Closes by code, over every kind.
    pub fn by_code(&self) -> BTreeMap<u16, u64> {
        let mut codes = BTreeMap::new();
        for (&(_, code), &count) in &self.closes {
            *codes.entry(code).or_default() += count;
        }
        codes
    }
}

/// What the diff part checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffCounts {
    /// Pairs of JSON values through diff and apply.
    pub json_pairs: u64,
    /// Pairs of a typed state (structs, vectors, maps, floats, options) through diff and apply.
    pub typed_pairs: u64,
    /// Random changes applied to random values (`Ok` or an error, no panic).
    pub random_changes: u64,
    /// Changes the pairs' diffs held.
    pub changes: u64,
}

impl DiffCounts {
    /// All diff inputs.
    pub fn total(&self) -> u64 {
        self.json_pairs + self.typed_pairs + self.random_changes
    }
}

/// One failure and how to see it again.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub what: String,
    /// The worker, connection and step (frames), or the case (diffs).
    pub at: String,
    /// The inputs and outputs of the failing connection, or the failing pair.
    pub trace: Vec<String>,
    /// The frame sequence shrunk to what still fails, when it could be replayed alone.
    pub minimal: Option<Vec<String>>,
}

impl Failure {
    /// A failure with nothing to show but what and where.
    fn plain(what: String, at: String) -> Self {
        Self {
            what,
            at,
            trace: Vec::new(),
            minimal: None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "FAILURE at {}: {}", self.at, self.what)?;
        writeln!(
            f,
            "  sequence (→ sent, ← received; control characters written \\u{{..}}, runs of one \
             character ⟪c × n⟫):"
        )?;
        for line in &self.trace {
            writeln!(f, "    {line}")?;
        }
        if let Some(minimal) = &self.minimal {
            writeln!(
                f,
                "  minimal reproduction (on a fresh connection; SESSION is its session id):"
            )?;
            for line in minimal {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

/// What a fuzz run found.
#[derive(Debug, Clone, Default)]
pub struct FuzzReport {
    /// The frame part.
    pub frames: FrameCounts,
    /// The diff part.
    pub diffs: DiffCounts,
    /// Every failure (at most `max_failures` per part and worker).
    pub failures: Vec<Failure>,
    /// Panics the hook saw on the fuzz's threads.
    pub panics: u64,
    /// Wall time of the frame part.
    pub frames_time: Duration,
    /// Wall time of the diff part.
    pub diffs_time: Duration,
    /// Worker threads.
    pub workers: usize,
    /// The seed.
    pub seed: u64,
}

impl FuzzReport {
    /// No failure and no panic.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.panics == 0
    }

    /// The report as Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64().max(1e-9);
        let total_time = self.frames_time + self.diffs_time;
        let total = self.frames.total() + self.diffs.total();
        let _ = writeln!(
            out,
            "## Fuzz: seed {}, {} workers\n\n| part | inputs | wall time | inputs/s |\n|---|---|---|---|",
            self.seed, self.workers
        );
        let _ = writeln!(
            out,
            "| frames through the session core | {} | {:.1} s | {:.0} |",
            self.frames.total(),
            self.frames_time.as_secs_f64(),
            rate(self.frames.total(), self.frames_time)
        );
        let _ = writeln!(
            out,
            "| state pairs and changes through diff and apply | {} | {:.1} s | {:.0} |",
            self.diffs.total(),
            self.diffs_time.as_secs_f64(),
            rate(self.diffs.total(), self.diffs_time)
        );
        let _ = writeln!(
            out,
            "| **all** | **{total}** | **{:.1} s** | **{:.0}** |\n",
            total_time.as_secs_f64(),
            rate(total, total_time)
        );
        let _ = writeln!(
            out,
            "Frames: {} connections, {} answered with a frame ({} mutation answers with their \
             epoch and version checked), {} resumes took a session back, {} batches of 2 to 8 \
             inputs sent before reading; closes by code: {}.\n",
            self.frames.connections,
            self.frames.total_answered(),
            self.frames.versions_checked,
            self.frames.resumed,
            self.frames.batches,
            codes(&self.frames.by_code())
        );
        let _ = writeln!(
            out,
            "| frame kind | inputs | answered | closed (code × count) | cut short in a batch |\n|---|---|---|---|---|"
        );
        for kind in Kind::ALL {
            let closes: BTreeMap<u16, u64> = self
                .frames
                .closes
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|((_, code), count)| (*code, *count))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                kind.name(),
                self.frames.inputs[kind.index()],
                self.frames.answered[kind.index()],
                codes(&closes),
                self.frames.cut[kind.index()]
            );
        }
        let _ = writeln!(
            out,
            "\nDiffs: {} JSON value pairs, {} typed state pairs ({} changes applied), {} random \
             change lists applied.\n",
            self.diffs.json_pairs,
            self.diffs.typed_pairs,
            self.diffs.changes,
            self.diffs.random_changes
        );
        let _ = writeln!(
            out,
            "Panics: {}. Failures: {}.",
            self.panics,
            self.failures.len()
        );
        out
    }
}

fn codes(codes: &BTreeMap<u16, u64>) -> String {
    if codes.is_empty() {
        return "-".into();
    }
    codes
        .iter()
        .map(|(code, count)| format!("{code} × {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Panics: counted per thread by a hook installed once.

static PANICS: AtomicU64 = AtomicU64::new(0);
const WORKER_PREFIX: &str = "storex-fuzz-";
static HOOK: Once = Once::new();

thread_local! {
    static THREAD_PANICS: Cell<u64> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            THREAD_PANICS.with(|count| count.set(count.get() + 1));
            LAST_PANIC.with(|last| *last.borrow_mut() = info.to_string());
            // The fuzz's threads report their panics with the failure (shrinking replays them).
            let fuzzing = std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with(WORKER_PREFIX));
            if !fuzzing {
                previous(info);
            }
        }));
    });
}

/// `result`, or a failure when this thread panicked since the count was `before`.
fn with_panic(result: Result<Flow, Failed>, before: u64) -> Result<Flow, Failed> {
    if thread_panics() == before {
        return result;
    }
    let panic = format!("a panic on the server side: {}", last_panic());
    match result {
        Ok(_) => Err(failed(Class::Panic, panic)),
        Err(mut failure) => {
            failure.what = format!("{}; and {panic}", failure.what);
            Err(failure)
        }
    }
}

fn thread_panics() -> u64 {
    THREAD_PANICS.with(Cell::get)
}

fn last_panic() -> String {
    LAST_PANIC.with(|last| last.borrow().clone())
}

// ---------------------------------------------------------------------------------------------
// Running.

/// Runs the fuzz: the frame part on every worker, then the diff part.
pub fn run(fuzz: &Fuzz) -> FuzzReport {
    install_panic_hook();
    let before = PANICS.load(Ordering::SeqCst);
    let workers = fuzz.workers.max(1);
    let mut report = FuzzReport {
        workers,
        seed: fuzz.seed,
        ..FuzzReport::default()
    };

    let (time, failures) = run_part(workers, "frames", &mut report.frames, |worker| {
        frames_worker(fuzz, worker, share(fuzz.frames, workers, worker))
    });
    report.frames_time = time;
    report.failures.extend(failures);
    let (time, failures) = run_part(workers, "diffs", &mut report.diffs, |worker| {
        diffs_worker(fuzz, worker, share(fuzz.diffs, workers, worker))
    });
    report.diffs_time = time;
    report.failures.extend(failures);
    report.panics = PANICS.load(Ordering::SeqCst) - before;
    report
}

/// Runs one part of the fuzz on every worker: its wall time and every worker's failures (a
/// worker that did not come back is one); each worker's counts are merged into `counts`.
fn run_part<C: Mergeable + Send>(
    workers: usize,
    part: &str,
    counts: &mut C,
    job: impl Fn(usize) -> (C, Vec<Failure>) + Sync,
) -> (Duration, Vec<Failure>) {
    let started = Instant::now();
    let results = on_workers(workers, job);
    let time = started.elapsed();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Some((worker_counts, worker_failures)) => {
                counts.merge(&worker_counts);
                failures.extend(worker_failures);
            }
            None => failures.push(Failure::plain(
                format!("a worker thread of the {part} part panicked or could not start"),
                part.into(),
            )),
        }
    }
    (time, failures)
}

/// Counts that add up across workers.
trait Mergeable {
    fn merge(&mut self, other: &Self);
}

fn share(total: u64, workers: usize, worker: usize) -> u64 {
    let workers = workers as u64;
    let worker = worker as u64;
    total / workers + u64::from(worker < total % workers)
}

/// Runs `job` on `workers` threads; `None` for a thread that panicked or did not start.
fn on_workers<T: Send>(workers: usize, job: impl Fn(usize) -> T + Sync) -> Vec<Option<T>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let job = &job;
                std::thread::Builder::new()
                    .name(format!("{WORKER_PREFIX}{worker}"))
                    .spawn_scoped(scope, move || job(worker))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.ok().and_then(|handle| handle.join().ok()))
            .collect()
    })
}

fn rng_for(seed: u64, worker: usize, part: u8) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(worker as u64).to_le_bytes());
    bytes[16] = part;
    bytes[31] = 0x5e;
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

// ---------------------------------------------------------------------------------------------
// The in-memory transport.

/// What the server did to the client.
#[derive(Debug)]
enum Out {
    Text(String),
    Closed(Close),
}

/// The server's side of a connection: two channels.
struct Memory {
    incoming: UnboundedReceiver<Incoming>,
    outgoing: UnboundedSender<Out>,
}

impl Transport for Memory {
    async fn recv(&mut self) -> Incoming {
        // Cancel-safe; a client that went away is a dropped connection.
        self.incoming.recv().await.unwrap_or(Incoming::Lost)
    }

    async fn send(&mut self, text: String) -> Result<(), Disconnected> {
        self.outgoing
            .send(Out::Text(text))
            .map_err(|_| Disconnected)
    }

    async fn close(&mut self, close: Close) {
        let _ = self.outgoing.send(Out::Closed(close));
    }
}

/// The client's side of a connection.
struct Conn {
    to_server: UnboundedSender<Incoming>,
    from_server: UnboundedReceiver<Out>,
    server: JoinHandle<()>,
    own: String,
}

impl Conn {
    /// Sends `input` to the server and logs it.
    fn send(&self, input: Input, log: &mut Vec<Entry>) -> Result<(), Failed> {
        let sent = self.to_server.send(input.incoming());
        log.push(Entry::In(input));
        sent.map_err(|_| {
            failed(
                Class::NoEnd,
                "the server stopped reading the connection without closing it",
            )
        })
    }

    /// What the server sends next, within `patience`.
    async fn recv(&mut self, patience: Duration) -> Result<Out, Failed> {
        match tokio::time::timeout(patience, self.from_server.recv()).await {
            Err(_) => Err(failed(
                Class::Hang,
                format!("no answer and no close within {patience:?}"),
            )),
            Ok(None) => Err(failed(
                Class::NoEnd,
                "the connection ended without an answer or a close",
            )),
            Ok(Some(out)) => Ok(out),
        }
    }
}

fn open(endpoint: &Endpoint) -> Result<Conn, String> {
    let accepted = endpoint
        .accept(&storex::ConnectRequest::default(), Extensions::new())
        .map_err(|refusal| format!("accept refused: {} {}", refusal.status, refusal.message))?;
    let own = accepted.session_id().to_owned();
    let (to_server, incoming) = mpsc::unbounded_channel();
    let (outgoing, from_server) = mpsc::unbounded_channel();
    let server = tokio::task::spawn_local(accepted.serve(Memory { incoming, outgoing }));
    Ok(Conn {
        to_server,
        from_server,
        server,
        own,
    })
}

// ---------------------------------------------------------------------------------------------
// Inputs and what they must get.

const MAX_FRAME: usize = 64 * 1024;

/// The close codes of PROTOCOL.md's table, with their reasons (4001's and the transport's
/// 1002 are prefixes).
const TABLE: [(u16, &str); 9] = [
    (4000, "Store is not set."),
    (4001, "Store '"),
    (1007, "Payload is malformed."),
    (1009, "Frame too large."),
    (1008, "Too many pending messages: the client does not read."),
    (1000, "Idle timeout."),
    (1001, "The server is stopping."),
    (1002, "Protocol error."),
    (1011, "Internal error."),
];

/// One input of a connection.
#[derive(Debug, Clone)]
enum Input {
    Text(String),
    Binary,
    Violation(Close),
    Activity,
    Closed,
    Lost,
}

impl Input {
    fn incoming(&self) -> Incoming {
        match self {
            Input::Text(text) => Incoming::Text(text.clone()),
            Input::Binary => Incoming::Binary,
            Input::Violation(close) => Incoming::Violation(close.clone()),
            Input::Activity => Incoming::Activity,
            Input::Closed => Incoming::Closed,
            Input::Lost => Incoming::Lost,
        }
    }

    fn show(&self) -> String {
        match self {
            Input::Text(text) => format!("→ text {}", show(text)),
            Input::Binary => "→ binary frame".into(),
            Input::Violation(close) => {
                format!("→ transport violation {} {:?}", close.code, close.reason)
            }
            Input::Activity => "→ activity (a WebSocket ping)".into(),
            Input::Closed => "→ client close".into(),
            Input::Lost => "→ connection dropped".into(),
        }
    }
}

/// Shows a frame exactly: control characters written `\u{..}`, runs of 16 or more of one
/// character `⟪c × n⟫`.
fn show(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let mut run = 1;
        while chars.peek() == Some(&c) {
            chars.next();
            run += 1;
        }
        let shown = if c.is_control() {
            format!("\\u{{{:x}}}", u32::from(c))
        } else {
            c.to_string()
        };
        if run >= 16 {
            let _ = write!(out, "⟪{shown} × {run}⟫");
        } else {
            for _ in 0..run {
                out.push_str(&shown);
            }
        }
        if out.len() > 6_000 {
            let _ = write!(out, "… ({} bytes in all)", text.len());
            break;
        }
    }
    out
}

const JOIN: u8 = 1;
const MUTATION: u8 = 2;
const ERROR: u8 = 4;
const PONG: u8 = 8;
const RESUME: u8 = 16;

fn type_bit(kind: &str) -> u8 {
    match kind {
        "join" => JOIN,
        "mutation" => MUTATION,
        "error" => ERROR,
        "pong" => PONG,
        "resume" => RESUME,
        _ => 0,
    }
}

/// How a mutation of a joined store turns out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Mutation,
    Error,
    Either,
}

impl Outcome {
    fn types(self) -> u8 {
        match self {
            Outcome::Mutation => MUTATION,
            Outcome::Error => ERROR,
            Outcome::Either => MUTATION | ERROR,
        }
    }
}

/// What a store holds for the client: the instance's epoch and the version it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    epoch: String,
    version: u64,
}

/// A mutation that reached a store, to send again after a resume.
#[derive(Debug, Clone)]
struct Replay {
    text: String,
    request: String,
    types: u8,
    version: Option<u64>,
}

/// A session left by a dropped connection, waiting for a resume.
#[derive(Debug, Clone)]
struct Parked {
    session: String,
    token: String,
    stores: BTreeMap<&'static str, Held>,
    replays: Vec<Replay>,
    when: Instant,
}

/// One store named in a resume request.
#[derive(Debug, Clone)]
struct Named {
    store: String,
    /// The session holds it, and the request gave its exact epoch and version: a `[]` diff.
    exact: Option<Held>,
    /// Whether the session holds it at all.
    held: bool,
}

/// What a resume must get.
#[derive(Debug, Clone)]
enum WantResume {
    Refused(String),
    Resumed {
        parked: Box<Parked>,
        named: Vec<Named>,
    },
}

/// What an answer must be.
#[derive(Debug, Clone)]
struct Want {
    types: u8,
    /// The request id sent (`None`: none, so `null`).
    request: Option<String>,
    /// The store the answer names.
    store: Option<&'static str>,
    /// A piece of the error message.
    error_has: Option<String>,
    resume: Option<WantResume>,
    replay: Option<Replay>,
    /// Whether the frame was a mutation of a store the session holds (versions checked), and
    /// whether it may be remembered for a replay.
    held_mutation: bool,
}

impl Want {
    fn new(types: u8, request: Option<String>) -> Self {
        Self {
            types,
            request,
            store: None,
            error_has: None,
            resume: None,
            replay: None,
            held_mutation: false,
        }
    }

    /// Whether `head` echoes the request id sent (`null` when none was).
    fn echoed_by(&self, head: &Head) -> bool {
        match (&self.request, &head.request) {
            (Some(sent), Some(Value::String(echoed))) => sent == echoed,
            (None, None) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
enum Expect {
    /// One answer, checked against the model.
    Answer(Box<Want>),
    /// A close with this code (and, when given, this reason).
    Close(u16, Option<String>),
    /// Any answer, or any close of the table but 1011.
    Anything,
    /// Nothing is sent back.
    Nothing,
    /// The connection ends without a frame.
    End,
}

#[derive(Debug, Clone)]
struct Step {
    kind: Kind,
    input: Input,
    expect: Expect,
}

impl Step {
    /// The client closes the connection, or drops it.
    fn end(close: bool) -> Self {
        let (kind, input) = if close {
            (Kind::ClientClose, Input::Closed)
        } else {
            (Kind::Drop, Input::Lost)
        };
        Self {
            kind,
            input,
            expect: Expect::End,
        }
    }

    fn text(kind: Kind, text: String, expect: Expect) -> Self {
        // Past the limit, any frame closes with 1009 before it is read.
        let expect = if text.len() > MAX_FRAME {
            Expect::Close(1009, Some("Frame too large.".into()))
        } else {
            expect
        };
        Self {
            kind,
            input: Input::Text(text),
            expect,
        }
    }
}

/// The answer's fields the oracle reads; the others (`data`, a diff's changes) are skipped
/// without a depth limit.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    request: Option<Value>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    resumed: Option<bool>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    epoch: Option<String>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    replayed: bool,
    #[serde(default)]
    diff: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    stores: Option<Vec<StoreHead>>,
}

#[derive(Deserialize)]
struct StoreHead {
    store: String,
    #[serde(default)]
    joined: Option<bool>,
    #[serde(default)]
    epoch: Option<String>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    diff: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    data: Option<IgnoredAny>,
}

/// What the client knows of its connection.
#[derive(Debug, Clone)]
struct Model {
    /// The connection's own session id.
    own: String,
    /// The session it serves: its own, or the one it resumed.
    session: String,
    /// Whether a message other than a ping was answered (a resume must come first).
    started: bool,
    /// Whether `stores` is exactly what the session holds.
    certain: bool,
    stores: BTreeMap<&'static str, Held>,
    /// The newest resume token, for `session`.
    token: Option<String>,
    /// The last mutations that reached a store, to replay after a resume.
    replays: Vec<Replay>,
    /// Whether the session was ever resumed (its old request ids are remembered).
    resumed: bool,
}

impl Model {
    fn new(own: &str) -> Self {
        Self {
            own: own.to_owned(),
            session: own.to_owned(),
            started: false,
            certain: true,
            stores: BTreeMap::new(),
            token: None,
            replays: Vec::new(),
            resumed: false,
        }
    }

    /// What every answer teaches, whatever the frame was.
    fn learn(&mut self, head: &Head) {
        if head.kind != "pong" {
            self.started = true;
        }
        if let Some(token) = &head.token {
            self.token = Some(token.clone());
        }
        let store = head.store.as_deref().and_then(our_store);
        match (head.kind.as_str(), store, &head.epoch, head.version) {
            ("join", Some(store), Some(epoch), Some(version)) => {
                self.stores.insert(
                    store,
                    Held {
                        epoch: epoch.clone(),
                        version,
                    },
                );
            }
            ("mutation", Some(store), Some(_), Some(version)) if !head.replayed => {
                if let Some(held) = self.stores.get_mut(store) {
                    held.version = version;
                }
            }
            _ => {}
        }
        if head.kind == "resume" && head.resumed == Some(true) {
            if let Some(session) = &head.session {
                self.session = session.clone();
            }
            self.resumed = true;
            self.certain = false;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generating inputs.

struct Gen {
    rng: TestRng,
    worker: usize,
    requests: u64,
}

const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'x', 'y', 'z', 'A', 'Q', '0', '1', '9', ' ', '.', '-', '_', '"', '\\', '/',
    '\n', '\t', '\r', '\u{0}', '\u{1f}', '\u{7f}', 'é', '€', '中', '𝄞', '\u{200b}', '\u{fffd}',
    '\u{feff}', '{', '}', '[', ']', ':', ',',
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "7",
    "255",
    "256",
    "65535",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "1.5",
    "-0.0",
    "0.0",
    "1e308",
    "-1e308",
    "5e-324",
    "1E+2",
    "0.1e-5",
    "123456789012345678901234567890",
];

const HUGE: &[&str] = &[
    "1e400",
    "-1e400",
    "1e99999",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890123456789012345678901234567890",
    "1e-400",
    "0.00000000000000000000000000000000000000000000000000000001",
    "99999999999999999999999999999999999999999999999999e999",
];

impl Gen {
    fn new(rng: TestRng, worker: usize) -> Self {
        Self {
            rng,
            worker,
            requests: 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.random_range(0..100u32) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A fresh request id of the valid frames (no generated or mutated frame makes one).
    fn request(&mut self) -> String {
        self.requests += 1;
        format!("#w{}n{}", self.worker, self.requests)
    }

    fn string(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        let plain = self.chance(60);
        (0..len)
            .map(|_| {
                if plain {
                    char::from(b'a' + self.below(26) as u8)
                } else {
                    *self.pick(ALPHABET)
                }
            })
            .collect()
    }

    fn int(&mut self) -> String {
        match self.below(4) {
            0 => self.pick(NUMBERS).to_string(),
            1 => self.rng.random::<i64>().to_string(),
            _ => (self.below(2001) as i64 - 1000).to_string(),
        }
    }

    /// A random valid JSON text of at most `depth` levels.
    fn json(&mut self, depth: u32) -> String {
        let mut out = String::new();
        self.write_json(&mut out, depth);
        out
    }

    fn write_json(&mut self, out: &mut String, depth: u32) {
        match self.below(if depth == 0 { 6 } else { 8 }) {
            0 => out.push_str("null"),
            1 => out.push_str(if self.chance(50) { "true" } else { "false" }),
            2 => {
                let number = self.int();
                out.push_str(&number);
            }
            3 => out.push_str(self.pick::<&str>(NUMBERS)),
            4 => {
                let x = (self.below(20_000) as f64 - 10_000.0) / 8.0;
                let _ = write!(out, "{x:?}");
            }
            5 => {
                let text = self.string(8);
                out.push_str(&json_str(&text));
            }
            6 => {
                out.push('[');
                for i in 0..self.below(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_json(out, depth - 1);
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                for i in 0..self.below(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    let key = self.string(3);
                    out.push_str(&json_str(&key));
                    out.push(':');
                    self.write_json(out, depth - 1);
                }
                out.push('}');
            }
        }
    }

    /// A JSON object of `fields` (`(key, JSON text)`), in this order or shuffled, with or without
    /// whitespace.
    fn object(&mut self, fields: &mut [(&str, String)]) -> String {
        if self.chance(15) {
            for i in (1..fields.len()).rev() {
                let j = self.below(i + 1);
                fields.swap(i, j);
            }
        }
        let spaced = self.chance(10);
        let space = if spaced {
            *self.pick(&[" ", "\n", "\t ", "\r\n"])
        } else {
            ""
        };
        let mut out = String::with_capacity(128);
        out.push('{');
        out.push_str(space);
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
                out.push_str(space);
            }
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            out.push_str(space);
            out.push_str(value);
        }
        out.push_str(space);
        out.push('}');
        out
    }

    fn ping(&mut self, request: Option<&str>) -> String {
        let mut fields = vec![("type", "\"ping\"".to_owned())];
        if let Some(request) = request {
            fields.push(("request", json_str(request)));
        }
        if self.chance(5) {
            let extra = self.json(2);
            fields.push(("extra", extra));
        }
        self.object(&mut fields)
    }

    fn join(&mut self, store: &str, params: Option<String>, request: Option<&str>) -> String {
        let mut fields = vec![("type", "\"join\"".to_owned()), ("store", json_str(store))];
        if let Some(params) = params {
            fields.push(("data", params));
        }
        if let Some(request) = request {
            fields.push(("request", json_str(request)));
        }
        self.object(&mut fields)
    }

    fn mutation(
        &mut self,
        store: &str,
        session: Option<&str>,
        name: &str,
        args: &str,
        request: Option<&str>,
    ) -> String {
        let mut fields = vec![
            ("type", "\"mutation\"".to_owned()),
            ("store", json_str(store)),
        ];
        if let Some(session) = session {
            fields.push(("session", json_str(session)));
        }
        let data = if args == "[]" && self.chance(30) {
            format!("{{\"name\":{}}}", json_str(name))
        } else {
            format!("{{\"name\":{},\"data\":{args}}}", json_str(name))
        };
        fields.push(("data", data));
        if let Some(request) = request {
            fields.push(("request", json_str(request)));
        }
        self.object(&mut fields)
    }

    fn resume(&mut self, session: &str, token: &str, stores: &str, request: &str) -> String {
        let mut fields = vec![
            ("type", "\"resume\"".to_owned()),
            ("session", json_str(session)),
            ("token", json_str(token)),
        ];
        if stores != "[]" || self.chance(50) {
            fields.push(("stores", stores.to_owned()));
        }
        fields.push(("request", json_str(request)));
        self.object(&mut fields)
    }

    fn card(&mut self) -> String {
        let title = self.string(6);
        let points = if self.chance(30) {
            "null".to_owned()
        } else {
            self.below(65_536).to_string()
        };
        let done = self.chance(50);
        if self.chance(10) {
            // Without `points`: an `Option` may be missing.
            format!("{{\"title\":{},\"done\":{done}}}", json_str(&title))
        } else {
            format!(
                "{{\"title\":{},\"done\":{done},\"points\":{points}}}",
                json_str(&title)
            )
        }
    }

    fn float(&mut self) -> String {
        match self.below(3) {
            0 => self.pick(NUMBERS).to_string(),
            1 => format!("{:?}", self.rng.random::<f64>() * 1e6 - 5e5),
            _ => self.below(100).to_string(),
        }
    }

    /// A well-typed mutation of `store`: its name, its arguments and how it turns out.
    fn valid_call(&mut self, store: &str) -> (&'static str, String, Outcome) {
        match store {
            COUNTER => match self.below(6) {
                0 => ("increase", "[]".into(), Outcome::Mutation),
                1 => {
                    let by = if self.chance(80) {
                        (self.below(2001) as i64 - 1000).to_string()
                    } else {
                        self.pick(&["9223372036854775807", "-9223372036854775808", "0", "-1"])
                            .to_string()
                    };
                    ("add", format!("[{by}]"), Outcome::Mutation)
                }
                2 => {
                    let label = self.string(24);
                    (
                        "label",
                        format!("[{}]", json_str(&label)),
                        Outcome::Mutation,
                    )
                }
                3 => {
                    let number = self.below(256);
                    let outcome = if number % 2 == 1 {
                        Outcome::Error
                    } else {
                        Outcome::Mutation
                    };
                    ("even", format!("[{number}]"), outcome)
                }
                4 => {
                    let why = self.string(12);
                    ("fail", format!("[{}]", json_str(&why)), Outcome::Error)
                }
                _ => ("tick", format!("[{}]", self.below(256)), Outcome::Mutation),
            },
            BOARD => match self.below(8) {
                0 => {
                    let card = self.card();
                    ("add_card", format!("[{card}]"), Outcome::Mutation)
                }
                1 => {
                    let cards: Vec<String> = (0..self.below(5)).map(|_| self.card()).collect();
                    (
                        "set_cards",
                        format!("[[{}]]", cards.join(",")),
                        Outcome::Mutation,
                    )
                }
                2 => {
                    let index = self.below(40);
                    let outcome = if index >= MAX_CARDS {
                        Outcome::Error
                    } else {
                        Outcome::Either
                    };
                    ("toggle", format!("[{index}]"), outcome)
                }
                3 => {
                    let name = self.string(4);
                    let weight = self.rng.random::<u32>();
                    (
                        "tag",
                        format!("[{},{weight}]", json_str(&name)),
                        Outcome::Mutation,
                    )
                }
                4 => {
                    let name = self.string(4);
                    ("untag", format!("[{}]", json_str(&name)), Outcome::Mutation)
                }
                5 => {
                    let (x, y) = (self.float(), self.float());
                    (
                        "move_to",
                        if self.chance(20) {
                            format!("[[{x},{y}]]")
                        } else {
                            format!("[{{\"x\":{x},\"y\":{y}}}]")
                        },
                        Outcome::Mutation,
                    )
                }
                6 => {
                    let value = self.json(4);
                    ("put", format!("[{value}]"), Outcome::Mutation)
                }
                _ => ("clear", "[]".into(), Outcome::Mutation),
            },
            _ => match self.below(2) {
                0 => ("visit", "[]".into(), Outcome::Mutation),
                _ => {
                    let name = self.string(10);
                    (
                        "rename",
                        format!("[{}]", json_str(&name)),
                        Outcome::Mutation,
                    )
                }
            },
        }
    }

    /// A mutation that matches nothing: an unknown name, the wrong arity, or an argument of the
    /// wrong type. The name and arguments, and a piece of the error.
    fn wrong_call(&mut self, store: &str) -> (String, String, &'static str) {
        const NOT_INT: &[&str] = &["\"ten\"", "true", "{}", "[]", "null", "1.5", "1e3"];
        const NOT_UNSIGNED: &[&str] = &["\"ten\"", "true", "{}", "null", "1.5", "-1"];
        const NOT_STRING: &[&str] = &["1", "true", "{}", "[]", "null"];
        const NOT_STRUCT: &[&str] = &["\"x\"", "true", "1", "null"];
        match self.below(3) {
            0 => {
                let name = format!("nope_{}", self.string(4));
                let args = format!("[{}]", self.json(1));
                (name, args, "No mutation matching")
            }
            1 => {
                let (name, args, _) = self.valid_call(store);
                let args = if args == "[]" || self.chance(50) {
                    let extra = self.json(1);
                    if args == "[]" {
                        format!("[{extra}]")
                    } else {
                        format!("{},{extra}]", &args[..args.len() - 1])
                    }
                } else {
                    "[]".to_owned()
                };
                (name.to_owned(), args, "No mutation matching")
            }
            _ => {
                let (name, args) = match (store, self.below(4)) {
                    (COUNTER, 0) => ("add", format!("[{}]", self.pick(NOT_INT))),
                    (COUNTER, 1) => ("even", format!("[{}]", self.pick(&["256", "-1", "2.0"]))),
                    (COUNTER, 2) => ("label", format!("[{}]", self.pick(NOT_STRING))),
                    (COUNTER, _) => ("tick", format!("[{}]", self.pick(NOT_UNSIGNED))),
                    (BOARD, 0) => ("add_card", format!("[{}]", self.pick(NOT_STRUCT))),
                    (BOARD, 1) => ("toggle", format!("[{}]", self.pick(NOT_UNSIGNED))),
                    (BOARD, 2) => (
                        "tag",
                        format!("[\"t\",{}]", self.pick(&["-1", "4294967296", "\"1\""])),
                    ),
                    (BOARD, _) => ("move_to", format!("[{}]", self.pick(NOT_STRUCT))),
                    (_, _) => ("rename", format!("[{}]", self.pick(NOT_STRING))),
                };
                (name.to_owned(), args, "does not fit")
            }
        }
    }

    /// A token the server never signed.
    fn forged_token(&mut self, other: Option<&str>) -> String {
        let now = unix_now();
        let hex = |gen: &mut Self, len: usize| -> String {
            (0..len)
                .map(|_| char::from(b"0123456789abcdef"[gen.below(16)]))
                .collect()
        };
        match self.below(10) {
            0 => format!("{}.{}", now + self.below(10_000) as u64, hex(self, 64)),
            1 => format!(
                "{}.{}",
                now.saturating_sub(1 + self.below(10_000) as u64),
                hex(self, 64)
            ),
            2 => match other {
                // A real token with a digit of its MAC or expiry changed.
                Some(token) if !token.is_empty() => {
                    let mut bytes = token.as_bytes().to_vec();
                    let at = self.below(bytes.len());
                    let replacement = if bytes[at].is_ascii_digit() {
                        b"0123456789"[self.below(10)]
                    } else {
                        b"0123456789abcdef"[self.below(16)]
                    };
                    bytes[at] = if bytes[at] == replacement {
                        if replacement == b'0' {
                            b'1'
                        } else {
                            b'0'
                        }
                    } else {
                        replacement
                    };
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => format!("{now}.{}", hex(self, 64)),
            },
            3 => match other {
                Some(token) => token.to_uppercase(),
                None => format!("{now}.{}", hex(self, 63)),
            },
            4 => format!("{now}.{}", hex(self, 65)),
            5 => format!("{}.{}", "9".repeat(20 + self.below(20)), hex(self, 64)),
            6 => self
                .pick(&["", ".", "abc", "1000.", ".00", "-1.00", "1e9.ab", "é.é"])
                .to_string(),
            7 => self.string(80),
            8 => "0".repeat(self.below(2_000)),
            _ => format!("{now}.{}é", hex(self, 62)),
        }
    }

    /// A random session id: the connection's own, another of the run, or made up.
    fn session_id(&mut self, own: &str, others: &[String]) -> String {
        match self.below(4) {
            0 => own.to_owned(),
            1 if !others.is_empty() => others[self.below(others.len())].clone(),
            2 => self.string(21),
            _ => (0..21)
                .map(|_| char::from(b'a' + self.below(26) as u8))
                .collect(),
        }
    }

    /// A `stores` list of a resume request, all made up.
    fn held_stores(&mut self) -> String {
        let entries: Vec<String> = (0..self.below(3))
            .map(|_| {
                let store = if self.chance(70) {
                    (*self.pick(&STORES)).to_owned()
                } else {
                    self.string(8)
                };
                format!(
                    "{{\"store\":{},\"epoch\":{},\"version\":{}}}",
                    json_str(&store),
                    json_str(&self.string(16)),
                    self.rng.random::<u64>() >> self.below(64)
                )
            })
            .collect();
        format!("[{}]", entries.join(","))
    }

    // -----------------------------------------------------------------------------------------
    // Hostile frames.

    /// Valid JSON of the wrong shapes: fields missing, of the wrong types, extra.
    fn wrong_shape(&mut self, own: &str) -> String {
        match self.below(12) {
            0 => self
                .pick(&[
                    "", " ", "null", "[]", "{}", "0", "\"ping\"", "true", "[{\"type\":\"ping\"}]",
                    "\u{feff}{\"type\":\"ping\"}",
                    "{\"type\":\"ping\"}{\"type\":\"ping\"}",
                    "{\"type\":\"ping\",\"type\":\"join\"}",
                    "{\"type\":\"join\",\"store\":\"Fuzz.Counter\",\"store\":\"Fuzz.Board\"}",
                    "{\"type\":null}",
                    "{\"type\":\"PING\"}",
                    "{\"Type\":\"ping\"}",
                    "{\"type\":\"ping \"}",
                    "{\"type\":\"mutation\",\"store\":\"Fuzz.Counter\"}",
                    "{\"type\":\"mutation\",\"store\":\"Fuzz.Counter\",\"data\":null}",
                    "{\"type\":\"mutation\",\"store\":\"Fuzz.Counter\",\"data\":{\"data\":[]}}",
                    "{\"type\":\"mutation\",\"store\":\"Fuzz.Counter\",\"data\":{\"name\":\"increase\",\"data\":{}}}",
                    "{\"type\":\"resume\"}",
                    "{\"type\":\"resume\",\"session\":\"s\"}",
                    "{\"type\":\"resume\",\"session\":\"s\",\"token\":\"t\",\"stores\":{}}",
                    "{\"type\":\"resume\",\"session\":\"s\",\"token\":\"t\",\"stores\":[{\"store\":\"Fuzz.Counter\",\"epoch\":\"e\",\"version\":-1}]}",
                    "{\"type\":\"resume\",\"session\":1,\"token\":\"t\"}",
                ])
                .to_string(),
            _ => {
                let kind = match self.below(8) {
                    0 => self.json(1),
                    1 => "\"join\"".into(),
                    2 => "\"mutation\"".into(),
                    3 => "\"ping\"".into(),
                    4 => "\"resume\"".into(),
                    5 => json_str(self.pick::<&str>(&["Join", "pong", "error", "push", "", "join\u{0}"])),
                    _ => json_str(&self.string(6)),
                };
                let mut fields: Vec<(&str, String)> = Vec::new();
                if self.chance(90) {
                    fields.push(("type", kind));
                }
                let any = |gen: &mut Self, good: String| {
                    if gen.chance(50) {
                        good
                    } else {
                        gen.json(3)
                    }
                };
                if self.chance(70) {
                    let good = json_str(self.pick::<&str>(&STORES));
                    let store = any(self, good);
                    fields.push(("store", store));
                }
                if self.chance(50) {
                    let good = json_str(own);
                    let session = any(self, good);
                    fields.push(("session", session));
                }
                if self.chance(70) {
                    let (name, args, _) = self.valid_call(COUNTER);
                    let good = format!("{{\"name\":{},\"data\":{args}}}", json_str(name));
                    let data = any(self, good);
                    fields.push(("data", data));
                }
                if self.chance(40) {
                    let token = self.forged_token(None);
                    let token = any(self, json_str(&token));
                    fields.push(("token", token));
                }
                if self.chance(30) {
                    let stores = self.held_stores();
                    let stores = any(self, stores);
                    fields.push(("stores", stores));
                }
                if self.chance(70) {
                    let request = self.json(2);
                    fields.push(("request", request));
                }
                if self.chance(20) {
                    let extra = self.json(3);
                    fields.push(("unknown", extra));
                }
                self.object(&mut fields)
            }
        }
    }

    /// Random byte edits of `text`; an input that is not UTF-8 becomes the transport's 1007
    /// sometimes, and otherwise has its bad bytes replaced.
    fn mutate(&mut self, text: &str) -> Input {
        const TOKENS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            "\\",
            ",",
            ":",
            "null",
            "1e400",
            "-",
            "\\u0000",
            "\\ud800",
            "\\uZZZZ",
            "\u{0}",
            "\u{7f}",
            "é",
            "\u{ffff}",
            "true",
            "\"type\"",
            "\"store\"",
        ];
        let mut bytes = text.as_bytes().to_vec();
        for _ in 0..1 + self.below(4) {
            let len = bytes.len();
            let at = self.below(len + 1);
            match self.below(7) {
                0 if at < len => bytes[at] ^= 1 << self.below(8),
                1 if at < len => bytes[at] = self.rng.random::<u8>(),
                2 => bytes.insert(at, self.rng.random::<u8>()),
                3 => {
                    let token = self.pick(TOKENS).as_bytes();
                    bytes.splice(at..at, token.iter().copied());
                }
                4 if at < len => {
                    let end = (at + 1 + self.below(8)).min(len);
                    bytes.drain(at..end);
                }
                5 if at < len => {
                    let end = (at + 1 + self.below(16)).min(len);
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
                _ if len >= 2 => {
                    let other = self.below(len);
                    bytes.swap(at.min(len - 1), other);
                }
                _ => bytes.push(b'}'),
            }
        }
        match String::from_utf8(bytes) {
            Ok(text) => Input::Text(text),
            Err(error) => {
                if self.chance(15) {
                    Input::Violation(Close::new(1007, "Payload is malformed."))
                } else {
                    Input::Text(String::from_utf8_lossy(error.as_bytes()).into_owned())
                }
            }
        }
    }

    /// `text` cut at a random byte (a cut inside a character replaces it).
    fn truncate(&mut self, text: &str) -> String {
        let at = self.below(text.len());
        String::from_utf8_lossy(&text.as_bytes()[..at]).into_owned()
    }
}

fn json_str(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

// ---------------------------------------------------------------------------------------------
// A worker of the frame part.

/// Why a connection failed, for shrinking: the failures that do not depend on the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Panic,
    Internal,
    UnlistedClose,
    Hang,
    NoEnd,
    AfterClose,
    /// An answer the model did not expect: not replayable alone.
    Model,
}

struct Failed {
    class: Class,
    what: String,
}

fn failed(class: Class, what: impl Into<String>) -> Failed {
    Failed {
        class,
        what: what.into(),
    }
}

/// An answer or close the model did not expect.
fn mismatch(what: impl Into<String>) -> Failed {
    failed(Class::Model, what)
}

/// How a step ended.
enum Flow {
    Go,
    /// The connection ended (a close, the client's close).
    Ended,
    /// The client dropped the connection; its session may wait for a resume.
    Dropped,
}

/// What happened on a connection, shown when it fails.
enum Entry {
    In(Input),
    Text(String),
    Close(Close),
    Note(String),
}

impl Entry {
    fn show(&self) -> String {
        match self {
            Entry::In(input) => input.show(),
            Entry::Text(text) => format!("← {}", show(text)),
            Entry::Close(close) => format!("← close {} {:?}", close.code, close.reason),
            Entry::Note(note) => format!("← {note}"),
        }
    }
}

struct FrameWorker<'a> {
    fuzz: &'a Fuzz,
    worker: usize,
    endpoint: Endpoint,
    gen: Gen,
    counts: FrameCounts,
    failures: Vec<Failure>,
    /// Sessions left by a dropped connection while holding stores.
    parked: VecDeque<Parked>,
    /// Sessions that ended, with a real token of theirs.
    ended: VecDeque<(String, String)>,
    /// Tokens of another endpoint whose life was under a second, and the last second they
    /// were valid.
    expired: Vec<(String, String)>,
    expired_after: u64,
    /// Session ids seen, for mutations naming another session.
    others: Vec<String>,
    /// Serving tasks of dropped connections (their sessions may wait for a resume).
    lingering: Vec<JoinHandle<()>>,
    reap_at: usize,
    /// Whether this connection mostly sends valid frames (long connections that mutate joined
    /// stores) or mostly hostile ones.
    calm: bool,
}

/// What a shrunk sequence has for the session id of the connection that failed.
const PLACEHOLDER: &str = "\u{1}SESSION\u{1}";

/// How long a detached session waits; resumes use sessions parked for less than half of it.
const RESUME_TTL: Duration = Duration::from_secs(16);

fn fuzz_config() -> Config {
    Config::default()
        .max_frame_size(MAX_FRAME)
        .resume_ttl(RESUME_TTL)
        .max_detached(1_000_000, 1 << 30)
        .idle_timeout(Duration::from_secs(60))
}

fn frames_worker(fuzz: &Fuzz, worker: usize, quota: u64) -> (FrameCounts, Vec<Failure>) {
    let plain = |what: String| Failure::plain(what, format!("worker {worker}"));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return (
                FrameCounts::default(),
                vec![plain(format!("no runtime: {error}"))],
            )
        }
    };
    let endpoint = match Endpoint::new(fuzz_config()) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            return (
                FrameCounts::default(),
                vec![plain(format!("no endpoint: {error}"))],
            )
        }
    };
    let mut this = FrameWorker {
        fuzz,
        worker,
        endpoint,
        gen: Gen::new(rng_for(fuzz.seed, worker, 1), worker),
        counts: FrameCounts::default(),
        failures: Vec::new(),
        parked: VecDeque::new(),
        ended: VecDeque::new(),
        expired: Vec::new(),
        expired_after: 0,
        others: Vec::new(),
        lingering: Vec::new(),
        reap_at: 256,
        calm: true,
    };
    LocalSet::new().block_on(&runtime, async {
        this.harvest_expired().await;
        let mut done = 0;
        while done < quota && this.failures.len() < fuzz.max_failures {
            done += this.connection(quota - done).await;
        }
        this.finish().await;
    });
    (this.counts, this.failures)
}

impl FrameWorker<'_> {
    /// Tokens of sessions of an endpoint whose tokens live under a second: expired from the
    /// next second on, but signed with the process's key, which every endpoint shares.
    async fn harvest_expired(&mut self) {
        let Ok(short) = Endpoint::new(
            Config::default()
                .idle_timeout(Duration::from_millis(100))
                .resume_ttl(Duration::from_millis(100)),
        ) else {
            return;
        };
        for _ in 0..4 {
            let Ok(mut conn) = open(&short) else { return };
            let _ = conn
                .to_server
                .send(Incoming::Text("{\"type\":\"ping\",\"request\":1}".into()));
            if let Ok(Some(Out::Text(text))) =
                tokio::time::timeout(self.fuzz.patience, conn.from_server.recv()).await
            {
                if let Ok(head) = serde_json::from_str::<Head>(&text) {
                    if let Some(token) = head.token {
                        let expiry = token.split('.').next().and_then(|e| e.parse().ok());
                        self.expired_after = self.expired_after.max(expiry.unwrap_or(u64::MAX));
                        self.expired.push((conn.own.clone(), token));
                    }
                }
            }
            let _ = conn.to_server.send(Incoming::Closed);
            let _ = tokio::time::timeout(self.fuzz.patience, conn.server).await;
        }
    }

    /// The end: the sessions still waiting for a resume end with the stop, and every serving
    /// task must finish without a panic.
    async fn finish(&mut self) {
        let hub = self.endpoint.hub().clone();
        if tokio::time::timeout(self.fuzz.patience * 3, hub.stop())
            .await
            .is_err()
        {
            self.fail_plain("the hub did not stop within three times the patience");
        }
        for handle in std::mem::take(&mut self.lingering) {
            match tokio::time::timeout(self.fuzz.patience, handle).await {
                Ok(Err(error)) if error.is_panic() => {
                    self.fail_plain("the serving task of a dropped connection panicked")
                }
                Ok(_) => {}
                Err(_) => {
                    self.fail_plain("the task of a dropped connection did not end at the stop")
                }
            }
        }
    }

    fn fail_plain(&mut self, what: &str) {
        let at = format!("worker {}", self.worker);
        self.failures.push(Failure::plain(what.into(), at));
    }

    /// Checks the serving tasks of dropped connections that ended meanwhile.
    async fn reap(&mut self) {
        if self.lingering.len() < self.reap_at {
            return;
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.lingering)
            .into_iter()
            .partition(JoinHandle::is_finished);
        self.lingering = waiting;
        self.reap_at = (self.lingering.len() * 2).max(256);
        for handle in done {
            if let Err(error) = handle.await {
                if error.is_panic() {
                    self.fail_plain("the serving task of a dropped connection panicked");
                }
            }
        }
    }

    /// One connection of at most `budget` inputs (a little more when a resume is replayed);
    /// how many it used.
    async fn connection(&mut self, budget: u64) -> u64 {
        self.reap().await;
        let mut conn = match open(&self.endpoint) {
            Ok(conn) => conn,
            Err(error) => {
                self.fail_plain(&error);
                return budget;
            }
        };
        self.counts.connections += 1;
        if self.others.len() < 64 {
            self.others.push(conn.own.clone());
        } else {
            let at = self.gen.below(64);
            self.others[at] = conn.own.clone();
        }
        self.calm = self.gen.chance(15);
        let mut model = Model::new(&conn.own);
        let mut log: Vec<Entry> = Vec::new();
        let length = (1 + self.gen.below(if self.calm { 64 } else { 12 }) as u64).min(budget);
        let mut forced: VecDeque<Step> = VecDeque::new();
        if self.gen.chance(15) {
            forced.extend(self.first_resume(&model));
        }
        // Some calm connections send batches: the server reads them ahead while it runs one.
        let batched = self.calm && self.gen.chance(30);
        let mut used = 0;
        loop {
            let panics = thread_panics();
            let (what, result) = if batched && forced.is_empty() && used + 3 < length {
                let size = (2 + self.gen.below(7) as u64).min(length - used - 1);
                let steps: Vec<Step> = (0..size).map(|_| self.batch_step(&model)).collect();
                used += size;
                let result = self.run_batch(&mut conn, &mut model, steps, &mut log).await;
                ("a batch", result)
            } else {
                let step = if used + 1 >= length && forced.is_empty() {
                    // The last input of a connection that nothing closed.
                    Step::end(self.gen.chance(65))
                } else if let Some(step) = forced.pop_front() {
                    step
                } else {
                    self.step(&model)
                };
                let step = self.materialize(step, &model);
                used += 1;
                let kind = step.kind;
                self.counts.inputs[kind.index()] += 1;
                let result = self
                    .run_step(&mut conn, &mut model, step, &mut log, &mut forced)
                    .await;
                (kind.name(), result)
            };
            match with_panic(result, panics) {
                Ok(Flow::Go) => {}
                Ok(Flow::Ended) => break,
                Ok(Flow::Dropped) => {
                    self.lingering.push(conn.server);
                    break;
                }
                Err(failure) => {
                    self.record(failure, &mut conn, &log, what).await;
                    break;
                }
            }
        }
        used
    }

    /// Records a failure of `conn` at the input (or batch) `what`, with its log and, when it can
    /// be replayed alone, its shrunk sequence.
    async fn record(&mut self, failure: Failed, conn: &mut Conn, log: &[Entry], what: &str) {
        conn.server.abort();
        let inputs: Vec<Input> = log
            .iter()
            .filter_map(|entry| match entry {
                Entry::In(input) => Some(input.clone()),
                _ => None,
            })
            .collect();
        let minimal = self.shrink(failure.class, &inputs, &conn.own).await;
        self.failures.push(Failure {
            what: failure.what,
            at: format!(
                "worker {}, connection {}, input {} ({}), seed {}",
                self.worker,
                self.counts.connections,
                inputs.len(),
                what,
                self.fuzz.seed
            ),
            trace: log.iter().map(Entry::show).collect(),
            minimal,
        });
    }

    /// A step for a batch: any but a close or a drop of the client.
    fn batch_step(&mut self, model: &Model) -> Step {
        loop {
            let step = self.step(model);
            if !matches!(step.kind, Kind::ClientClose | Kind::Drop) {
                return step;
            }
        }
    }

    /// Sends `steps` at once, then reads: one answer per frame, in order, each of its frame's
    /// type and with its request id, until a close that a frame of the batch at or after the
    /// first unanswered one may cause.
    async fn run_batch(
        &mut self,
        conn: &mut Conn,
        model: &mut Model,
        steps: Vec<Step>,
        log: &mut Vec<Entry>,
    ) -> Result<Flow, Failed> {
        self.counts.batches += 1;
        let mut pending = Vec::with_capacity(steps.len());
        for step in steps {
            self.counts.inputs[step.kind.index()] += 1;
            conn.send(step.input, log)?;
            pending.push((step.kind, step.expect));
        }
        for at in 0..pending.len() {
            let (kind, expect) = &pending[at];
            if matches!(expect, Expect::Nothing) {
                continue;
            }
            let out = conn.recv(self.fuzz.patience).await.map_err(|mut failure| {
                let _ = write!(
                    failure.what,
                    " (input {} of a batch of {})",
                    at + 1,
                    pending.len()
                );
                failure
            })?;
            match out {
                Out::Text(text) => {
                    self.counts.answered[kind.index()] += 1;
                    let checked = batch_answer(&text, *kind, expect, model);
                    log.push(Entry::Text(text));
                    checked?;
                }
                Out::Closed(close) => {
                    for (cut, _) in &pending[at + 1..] {
                        self.counts.cut[cut.index()] += 1;
                    }
                    let code = self.take_close(*kind, close, &Expect::Anything, log)?;
                    let explained = pending[at..]
                        .iter()
                        .any(|(_, expect)| matches!(expect, Expect::Anything | Expect::Close(..)));
                    if !explained {
                        return Err(mismatch(
                            format!(
                                "closed with {code} at input {} of a batch of {} whose inputs from there on are all valid",
                                at + 1,
                                pending.len()
                            ),
                        ));
                    }
                    return self.closed(conn, model, log, code).await;
                }
            }
        }
        Ok(Flow::Go)
    }

    /// A close the server sent after an input of `kind`: counted, logged and checked against
    /// `expect`; its code.
    fn take_close(
        &mut self,
        kind: Kind,
        close: Close,
        expect: &Expect,
        log: &mut Vec<Entry>,
    ) -> Result<u16, Failed> {
        let code = close.code;
        *self.counts.closes.entry((kind, code)).or_default() += 1;
        let checked = check_close(&close, expect);
        log.push(Entry::Close(close));
        checked.map(|()| code)
    }

    /// After a close with `code`: the session ended (but for an idle timeout, a stop or a
    /// client that does not read), and the connection must end.
    async fn closed(
        &mut self,
        conn: &mut Conn,
        model: &Model,
        log: &mut Vec<Entry>,
        code: u16,
    ) -> Result<Flow, Failed> {
        if ![1000, 1001, 1008].contains(&code) {
            self.session_ended(model);
        }
        self.expect_end(conn, log).await?;
        Ok(Flow::Ended)
    }

    /// A step that needed what the answers before it brought (the own session's token).
    fn materialize(&mut self, step: Step, model: &Model) -> Step {
        if step.kind != Kind::ResumeOwn {
            return step;
        }
        let request = self.gen.request();
        let token = model.token.clone().unwrap_or_default();
        let text = self.gen.resume(&model.own, &token, "[]", &request);
        let error = format!("Session {} is attached to another connection.", model.own);
        Step::text(Kind::ResumeOwn, text, refused(model, request, error))
    }

    /// A resume as the first message (or a ping and then one, for the own session).
    fn first_resume(&mut self, model: &Model) -> Vec<Step> {
        let request = self.gen.request();
        match self.gen.below(10) {
            0..=3 => {
                let young = RESUME_TTL / 2;
                if let Some(at) = self
                    .parked
                    .iter()
                    .rposition(|parked| parked.when.elapsed() < young)
                {
                    if let Some(parked) = self.parked.remove(at) {
                        return vec![self.resume_parked(parked, request)];
                    }
                }
                vec![self.forged_resume(model, request)]
            }
            4 => match self.ended.pop_front() {
                Some((session, token)) => {
                    let stores = self.gen.held_stores();
                    let text = self.gen.resume(&session, &token, &stores, &request);
                    let error = format!("Session {session} cannot be resumed: it has ended.");
                    vec![Step::text(
                        Kind::ResumeEnded,
                        text,
                        refused(model, request, error),
                    )]
                }
                None => vec![self.forged_resume(model, request)],
            },
            5 if !self.expired.is_empty() && unix_now() > self.expired_after => {
                let (session, token) = self.expired[self.gen.below(self.expired.len())].clone();
                let stores = self.gen.held_stores();
                let text = self.gen.resume(&session, &token, &stores, &request);
                vec![Step::text(
                    Kind::ResumeExpired,
                    text,
                    refused(model, request, "The resume token has expired.".into()),
                )]
            }
            6 => {
                // A ping brings a token of the connection's own session; a resume of it is
                // refused: the session is attached (to this very connection).
                let ping_request = self.gen.request();
                let ping = self.gen.ping(Some(&ping_request));
                vec![
                    Step::text(
                        Kind::Ping,
                        ping,
                        Expect::Answer(Box::new(Want::new(PONG, Some(ping_request)))),
                    ),
                    Step {
                        kind: Kind::ResumeOwn,
                        input: Input::Activity,
                        expect: Expect::Nothing,
                    },
                ]
            }
            _ => vec![self.forged_resume(model, request)],
        }
    }

    fn resume_parked(&mut self, parked: Parked, request: String) -> Step {
        let mut entries = Vec::new();
        let mut named = Vec::new();
        for (store, held) in &parked.stores {
            if self.gen.chance(20) {
                continue; // not named: it stays joined
            }
            let exact = self.gen.chance(70);
            let (epoch, version) = if exact {
                (held.epoch.clone(), held.version)
            } else {
                match self.gen.below(3) {
                    0 => (self.gen.string(16), held.version),
                    1 => (
                        held.epoch.clone(),
                        held.version.saturating_sub(1 + self.gen.below(4) as u64),
                    ),
                    _ => (
                        held.epoch.clone(),
                        held.version + 1 + self.gen.below(1000) as u64,
                    ),
                }
            };
            entries.push(format!(
                "{{\"store\":{},\"epoch\":{},\"version\":{version}}}",
                json_str(store),
                json_str(&epoch)
            ));
            named.push(Named {
                store: (*store).to_owned(),
                exact: exact.then(|| held.clone()),
                held: true,
            });
        }
        for store in STORES {
            if !parked.stores.contains_key(store) && self.gen.chance(20) {
                entries.push(format!(
                    "{{\"store\":{},\"epoch\":\"e\",\"version\":0}}",
                    json_str(store)
                ));
                named.push(Named {
                    store: store.to_owned(),
                    exact: None,
                    held: false,
                });
            }
        }
        let stores = format!("[{}]", entries.join(","));
        let text = self
            .gen
            .resume(&parked.session, &parked.token, &stores, &request);
        let mut want = Want::new(RESUME, Some(request));
        want.resume = Some(WantResume::Resumed {
            parked: Box::new(parked),
            named,
        });
        Step::text(Kind::ResumeDetached, text, Expect::Answer(Box::new(want)))
    }

    /// A resume the server must refuse: a forged token, a real one for another session; when
    /// not first, any.
    fn forged_resume(&mut self, model: &Model, request: String) -> Step {
        let real = match self.gen.below(3) {
            0 => self
                .parked
                .back()
                .map(|p| (p.session.clone(), p.token.clone())),
            1 => self.ended.back().cloned(),
            _ => None,
        };
        let (session, token) = match real {
            // Not first: even a real token is refused.
            Some(real) if model.started && self.gen.chance(30) => real,
            Some((owner, token)) if self.gen.chance(50) => {
                // A real token, for another session.
                let mut session = self.gen.session_id(&model.own, &self.others);
                if session == owner {
                    session.push('x');
                }
                (session, token)
            }
            Some((owner, token)) => (owner, self.gen.forged_token(Some(&token))),
            None => {
                let session = self.gen.session_id(&model.own, &self.others);
                (session, self.gen.forged_token(None))
            }
        };
        let stores = self.gen.held_stores();
        let text = self.gen.resume(&session, &token, &stores, &request);
        let kind = if model.started {
            Kind::ResumeNotFirst
        } else {
            Kind::ResumeForged
        };
        Step::text(
            kind,
            text,
            refused(
                model,
                request,
                "The resume token is not valid for this session.".into(),
            ),
        )
    }

    /// The next input after the first ones.
    fn step(&mut self, model: &Model) -> Step {
        if self.calm && model.stores.is_empty() && self.gen.chance(30) {
            return self.join_step(model);
        }
        // Calm connections send a hostile frame now and then; the others every other frame.
        let hostile = self.gen.chance(if self.calm { 3 } else { 60 });
        let roll = if hostile {
            620 + self.gen.below(380)
        } else {
            self.gen.below(620)
        };
        match roll {
            0..=69 => {
                let request = self.maybe_request();
                let text = self.gen.ping(request.as_deref());
                Step::text(
                    Kind::Ping,
                    text,
                    Expect::Answer(Box::new(Want::new(PONG, request))),
                )
            }
            70..=169 => self.join_step(model),
            170..=509 => self.mutation_step(model),
            510..=564 => self.wrong_mutation_step(model),
            565..=584 => {
                let request = self.gen.request();
                let store = *self.gen.pick(&STORES);
                let mut other = self.gen.session_id(&model.own, &self.others);
                if other == model.session {
                    other.push('x');
                }
                let (name, args, _) = self.gen.valid_call(store);
                let text = self
                    .gen
                    .mutation(store, Some(&other), name, &args, Some(&request));
                let mut want = Want::new(ERROR, Some(request));
                want.store = Some(store);
                want.error_has = Some("is not the session of this connection".into());
                Step::text(Kind::OtherSession, text, Expect::Answer(Box::new(want)))
            }
            585..=599 => {
                let request = self.gen.request();
                self.forged_resume(model, request)
            }
            600..=619 => Step {
                kind: Kind::Activity,
                input: Input::Activity,
                expect: Expect::Nothing,
            },
            620..=629 => self.unknown_store_step(model),
            630..=639 => self.missing_store_step(model),
            640..=739 => {
                let text = self.gen.wrong_shape(&model.session);
                Step::text(Kind::WrongShape, text, Expect::Anything)
            }
            740..=809 => {
                let valid = self.valid_frame(model);
                let text = self.gen.truncate(&valid);
                Step::text(Kind::Truncated, text, Expect::Anything)
            }
            810..=919 => {
                let valid = self.valid_frame(model);
                match self.gen.mutate(&valid) {
                    Input::Text(text) => Step::text(Kind::Mutated, text, Expect::Anything),
                    input => Step {
                        kind: Kind::Mutated,
                        input,
                        expect: Expect::Close(1007, Some("Payload is malformed.".into())),
                    },
                }
            }
            920..=934 => self.deep_step(model),
            935..=964 => self.huge_step(model),
            965..=972 => self.at_the_limit_step(),
            973..=980 => Step {
                kind: Kind::Binary,
                input: Input::Binary,
                expect: Expect::Close(1007, Some("Payload is malformed.".into())),
            },
            981..=988 => {
                let close = match self.gen.below(3) {
                    0 => Close::new(1007, "Payload is malformed."),
                    1 => Close::new(1009, "Frame too large."),
                    _ => Close::new(1002, "Protocol error."),
                };
                Step {
                    kind: Kind::Violation,
                    expect: Expect::Close(close.code, Some(close.reason.clone())),
                    input: Input::Violation(close),
                }
            }
            989..=993 => Step::end(true),
            _ => Step::end(false),
        }
    }

    /// A request id, or (rarely) none: then the answer's `request` is `null`.
    fn maybe_request(&mut self) -> Option<String> {
        if self.gen.chance(4) {
            None
        } else {
            Some(self.gen.request())
        }
    }

    fn join_step(&mut self, model: &Model) -> Step {
        let store = *self.gen.pick(&STORES);
        let request = self.maybe_request();
        let (params, types, error_has) = match store {
            GATE => match self.gen.below(4) {
                0 | 1 => (Some("{\"pass\":\"open\"}".to_owned()), JOIN, None),
                2 => (
                    Some(format!("{{\"pass\":{}}}", self.gen.json(1))),
                    JOIN | ERROR,
                    None,
                ),
                _ => (None, ERROR, Some("Refused by init.")),
            },
            _ => match self.gen.below(5) {
                0 => (None, JOIN, None),
                1 => (Some("{}".to_owned()), JOIN, None),
                2 => (
                    Some(format!("{{\"start\":{}}}", self.gen.int())),
                    JOIN,
                    None,
                ),
                3 => (Some(self.gen.json(3)), JOIN, None),
                _ => (Some("null".to_owned()), JOIN, None),
            },
        };
        // A store the session holds answers its state again, whatever the params.
        let (types, error_has) = if model.stores.contains_key(store) {
            (JOIN, None)
        } else if model.certain {
            (types, error_has)
        } else {
            (JOIN | ERROR, None)
        };
        let text = self.gen.join(store, params, request.as_deref());
        let mut want = Want::new(types, request);
        want.store = Some(store);
        want.error_has = error_has.map(str::to_owned);
        Step::text(Kind::Join, text, Expect::Answer(Box::new(want)))
    }

    /// The `session` field of a mutation: the connection's, or none.
    fn own_session(&mut self, model: &Model) -> Option<String> {
        if self.gen.chance(75) {
            Some(model.session.clone())
        } else {
            None
        }
    }

    fn mutation_step(&mut self, model: &Model) -> Step {
        let held: Vec<&'static str> = model.stores.keys().copied().collect();
        let store = if !held.is_empty() && self.gen.chance(85) {
            *self.gen.pick(&held)
        } else {
            *self.gen.pick(&STORES)
        };
        let (name, args, outcome) = self.gen.valid_call(store);
        let request = self.maybe_request();
        let session = self.own_session(model);
        let text = self
            .gen
            .mutation(store, session.as_deref(), name, &args, request.as_deref());
        let mut want = Want::new(0, request);
        want.store = Some(store);
        if model.stores.contains_key(store) {
            want.types = outcome.types();
            want.held_mutation = model.certain;
        } else if model.certain {
            want.types = ERROR;
            want.error_has = Some("is not joined in this session".into());
        } else {
            want.types = MUTATION | ERROR;
        }
        Step::text(Kind::Mutation, text, Expect::Answer(Box::new(want)))
    }

    fn wrong_mutation_step(&mut self, model: &Model) -> Step {
        let store = *self.gen.pick(&STORES);
        let (name, args, error_has) = self.gen.wrong_call(store);
        let request = self.gen.request();
        let session = self.own_session(model);
        let text = self
            .gen
            .mutation(store, session.as_deref(), &name, &args, Some(&request));
        let mut want = Want::new(ERROR, Some(request));
        want.store = Some(store);
        if model.stores.contains_key(store) {
            want.error_has = Some(error_has.into());
            want.held_mutation = model.certain;
        } else if model.certain {
            want.error_has = Some("is not joined in this session".into());
        }
        Step::text(Kind::WrongMutation, text, Expect::Answer(Box::new(want)))
    }

    fn unknown_store_step(&mut self, model: &Model) -> Step {
        let mut store = match self.gen.below(4) {
            0 => "Fuzz.counter".to_owned(),
            1 => "é".repeat(100 + self.gen.below(100)),
            2 => String::new(),
            _ => self.gen.string(40),
        };
        if our_store(&store).is_some() {
            store.push('?');
        }
        let request = self.gen.request();
        let text = if self.gen.chance(50) {
            let params = self.gen.json(2);
            self.gen.join(&store, Some(params), Some(&request))
        } else {
            let session = self.own_session(model);
            self.gen
                .mutation(&store, session.as_deref(), "increase", "[]", Some(&request))
        };
        let reason = Close::new(
            4001,
            format!("Store '{store}' is not defined or can't be compiled."),
        )
        .reason;
        Step::text(Kind::UnknownStore, text, Expect::Close(4001, Some(reason)))
    }

    fn missing_store_step(&mut self, model: &Model) -> Step {
        let request = json_str(&self.gen.request());
        let text = match self.gen.below(4) {
            0 => format!("{{\"type\":\"join\",\"data\":{{}},\"request\":{request}}}"),
            1 => format!("{{\"type\":\"join\",\"store\":null,\"request\":{request}}}"),
            2 => {
                let session = self.own_session(model);
                let session = session.map_or(String::new(), |s| format!(",\"session\":{}", json_str(&s)));
                format!(
                    "{{\"type\":\"mutation\",\"store\":null{session},\"data\":{{\"name\":\"increase\",\"data\":[]}},\"request\":{request}}}"
                )
            }
            _ => format!(
                "{{\"type\":\"mutation\",\"data\":{{\"name\":\"increase\",\"data\":[]}},\"request\":{request}}}"
            ),
        };
        Step::text(
            Kind::MissingStore,
            text,
            Expect::Close(4000, Some("Store is not set.".into())),
        )
    }

    /// A valid frame to cut or mutate (with a request id no valid frame uses).
    fn valid_frame(&mut self, model: &Model) -> String {
        let request = format!("x{}", self.gen.below(1_000_000));
        match self.gen.below(5) {
            0 => self.gen.ping(Some(&request)),
            1 => {
                let store = *self.gen.pick(&STORES);
                let params = self.gen.json(2);
                self.gen.join(store, Some(params), Some(&request))
            }
            2 => {
                let stores = self.gen.held_stores();
                let token = self.gen.forged_token(model.token.as_deref());
                self.gen.resume(&model.session, &token, &stores, &request)
            }
            _ => {
                let store = *self.gen.pick(&STORES);
                let (name, args, _) = self.gen.valid_call(store);
                self.gen
                    .mutation(store, Some(&model.session), name, &args, Some(&request))
            }
        }
    }

    fn deep_step(&mut self, model: &Model) -> Step {
        let depth = *self
            .gen
            .pick(&[100, 126, 127, 128, 129, 200, 1_000, 10_000, 30_000]);
        let (open, close) = match self.gen.below(3) {
            0 => ("[", "]"),
            1 => ("{\"a\":", "}"),
            _ => ("[{\"a\":", "}]"),
        };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let request = self.gen.request();
        let store = *self.gen.pick(&STORES);
        // Where the nesting goes, and whether the decoder must read it (then past serde_json's
        // limit of 128 levels the frame is malformed) or may skip it.
        let (text, read) = match self.gen.below(6) {
            0 => (nested, true),
            1 => (self.gen.join(store, Some(nested), Some(&request)), true),
            2 => (
                self.gen.mutation(
                    BOARD,
                    Some(&model.session),
                    "put",
                    &format!("[{nested}]"),
                    Some(&request),
                ),
                true,
            ),
            3 => (format!("{{\"type\":\"ping\",\"request\":{nested}}}"), true),
            4 => (
                format!("{{\"type\":\"ping\",\"data\":{nested},\"request\":1}}"),
                false,
            ),
            _ => (
                format!(
                    "{{\"type\":\"join\",\"store\":{},\"unknown\":{nested},\"request\":1}}",
                    json_str(store)
                ),
                false,
            ),
        };
        let expect = if read && depth >= 200 {
            Expect::Close(1007, Some("Payload is malformed.".into()))
        } else {
            Expect::Anything
        };
        Step::text(Kind::Deep, text, expect)
    }

    fn huge_step(&mut self, model: &Model) -> Step {
        let huge = *self.gen.pick(HUGE);
        let request = self.gen.request();
        let text = match self.gen.below(6) {
            0 => format!("{{\"type\":\"ping\",\"request\":{huge}}}"),
            1 => self.gen.mutation(
                COUNTER,
                Some(&model.session),
                "add",
                &format!("[{huge}]"),
                Some(&request),
            ),
            2 => self.gen.mutation(
                BOARD,
                Some(&model.session),
                "put",
                &format!("[{{\"n\":[{huge}]}}]"),
                Some(&request),
            ),
            3 => self
                .gen
                .join(COUNTER, Some(format!("{{\"start\":{huge}}}")), Some(&request)),
            4 => format!(
                "{{\"type\":\"resume\",\"session\":\"s\",\"token\":\"t\",\"stores\":[{{\"store\":\"Fuzz.Counter\",\"epoch\":\"e\",\"version\":{huge}}}],\"request\":1}}"
            ),
            _ => format!("{{\"type\":\"ping\",\"n\":{huge},\"request\":1}}"),
        };
        Step::text(Kind::HugeNumber, text, Expect::Anything)
    }

    fn at_the_limit_step(&mut self) -> Step {
        let request = self.gen.request();
        let head = format!(
            "{{\"type\":\"ping\",\"request\":{},\"pad\":\"",
            json_str(&request)
        );
        let target = MAX_FRAME - 2 + self.gen.below(5);
        let pad = target - head.len() - 2;
        let text = format!("{head}{}\"}}", " ".repeat(pad));
        let expect = Expect::Answer(Box::new(Want::new(PONG, Some(request))));
        Step::text(Kind::AtTheLimit, text, expect)
    }

    // -----------------------------------------------------------------------------------------
    // Running a step and checking what came back.

    async fn run_step(
        &mut self,
        conn: &mut Conn,
        model: &mut Model,
        step: Step,
        log: &mut Vec<Entry>,
        forced: &mut VecDeque<Step>,
    ) -> Result<Flow, Failed> {
        let kind = step.kind;
        let dropped = matches!(step.input, Input::Lost);
        conn.send(step.input, log)?;
        match step.expect {
            Expect::Nothing => Ok(Flow::Go),
            Expect::End if dropped => {
                if model.certain && !model.stores.is_empty() {
                    if let Some(token) = &model.token {
                        self.parked.push_back(Parked {
                            session: model.session.clone(),
                            token: token.clone(),
                            stores: model.stores.clone(),
                            replays: model.replays.clone(),
                            when: Instant::now(),
                        });
                        if self.parked.len() > 16 {
                            self.parked.pop_front();
                        }
                    }
                }
                Ok(Flow::Dropped)
            }
            Expect::End => {
                self.session_ended(model);
                self.expect_end(conn, log).await?;
                Ok(Flow::Ended)
            }
            expect => match conn.recv(self.fuzz.patience).await? {
                Out::Text(text) => {
                    self.counts.answered[kind.index()] += 1;
                    let sent = match log.last() {
                        Some(Entry::In(Input::Text(sent))) => Some(sent.as_str()),
                        _ => None,
                    };
                    let checked = self.check_answer(&text, sent, &expect, model, forced);
                    log.push(Entry::Text(text));
                    checked.map(|()| Flow::Go)
                }
                Out::Closed(close) => {
                    let code = self.take_close(kind, close, &expect, log)?;
                    self.closed(conn, model, log, code).await
                }
            },
        }
    }

    /// The connection's session ended: a real token of it makes a resume of an ended session.
    fn session_ended(&mut self, model: &Model) {
        if let Some(token) = &model.token {
            self.ended.push_back((model.session.clone(), token.clone()));
            if self.ended.len() > 16 {
                self.ended.pop_front();
            }
        }
    }

    /// After a close, or the client's close: nothing more comes, the serving task ends.
    async fn expect_end(&mut self, conn: &mut Conn, log: &mut Vec<Entry>) -> Result<(), Failed> {
        match tokio::time::timeout(self.fuzz.patience, conn.from_server.recv()).await {
            Ok(None) => {}
            Ok(Some(Out::Text(text))) => {
                log.push(Entry::Text(text));
                return Err(failed(
                    Class::AfterClose,
                    "a frame was sent after the connection closed",
                ));
            }
            Ok(Some(Out::Closed(close))) => {
                log.push(Entry::Close(close));
                return Err(failed(
                    Class::AfterClose,
                    "a second close was sent after the connection closed",
                ));
            }
            Err(_) => {
                log.push(Entry::Note("(nothing; the connection stays open)".into()));
                return Err(failed(
                    Class::NoEnd,
                    format!(
                        "the connection did not end within {:?} of its close",
                        self.fuzz.patience
                    ),
                ));
            }
        }
        match tokio::time::timeout(self.fuzz.patience, &mut conn.server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) if error.is_panic() => Err(failed(
                Class::Panic,
                format!("the serving task panicked: {}", last_panic()),
            )),
            Ok(Err(_)) => Ok(()),
            Err(_) => Err(failed(
                Class::NoEnd,
                "the serving task did not finish after the connection ended",
            )),
        }
    }

    fn check_answer(
        &mut self,
        text: &str,
        sent: Option<&str>,
        expect: &Expect,
        model: &mut Model,
        forced: &mut VecDeque<Step>,
    ) -> Result<(), Failed> {
        let (head, bit) = read_head(text, model)?;
        let want = match expect {
            Expect::Answer(want) => want,
            Expect::Anything => {
                model.learn(&head);
                return Ok(());
            }
            Expect::Close(code, _) => {
                return Err(mismatch(format!("an answer where a close {code} was due")))
            }
            Expect::Nothing | Expect::End => return Err(mismatch("an answer where none was due")),
        };
        if head.replayed && want.replay.is_none() {
            if model.resumed {
                // A request id of a mutated frame may repeat one answered before the resume.
                model.learn(&head);
                return Ok(());
            }
            return Err(mismatch(
                "an answer marked replayed in a session never resumed",
            ));
        }
        of_type(&head, bit, want.types)?;
        if !want.echoed_by(&head) {
            return Err(mismatch(format!(
                "the answer's request is {:?}, not {:?}",
                head.request, want.request
            )));
        }
        if let (Some(store), JOIN | MUTATION | ERROR) = (want.store, bit) {
            if head.store.as_deref() != Some(store) {
                return Err(mismatch(format!(
                    "the answer's store is {:?}, not {store:?}",
                    head.store
                )));
            }
        }
        if let (Some(piece), ERROR) = (&want.error_has, bit) {
            if !head.error.as_deref().unwrap_or("").contains(piece.as_str()) {
                return Err(mismatch(format!(
                    "the error {:?} does not say {piece:?}",
                    head.error
                )));
            }
        }
        match bit {
            PONG if head.token.is_none() => return Err(mismatch("a pong without a resume token")),
            JOIN if head.token.is_none() || head.epoch.is_none() || head.version.is_none() => {
                return Err(mismatch(
                    "a join answer without its token, epoch or version",
                ))
            }
            _ => {}
        }
        if let (JOIN, Some(held)) = (bit, want.store.and_then(|s| model.stores.get(s))) {
            // Joined again: the same instance, at the same version.
            if head.epoch.as_ref() != Some(&held.epoch) || head.version != Some(held.version) {
                return Err(mismatch(format!(
                    "joined again, the answer is at epoch {:?} version {:?}, not at the held {held:?}",
                    head.epoch, head.version
                )));
            }
        }
        if let Some(replay) = &want.replay {
            if !head.replayed || head.version != replay.version {
                return Err(mismatch(format!(
                    "a mutation sent again after a resume answered with replayed={} version {:?}; due: replayed=true, its first version {:?}",
                    head.replayed, head.version, replay.version
                )));
            }
        }
        if want.held_mutation {
            let held = want
                .store
                .and_then(|store| model.stores.get(store))
                .cloned();
            if let Some(held) = held {
                let changes = head.diff.as_ref().map_or(0, Vec::len);
                let due = match bit {
                    MUTATION => held.version + u64::from(changes > 0),
                    _ => held.version,
                };
                if head.epoch.as_ref() != Some(&held.epoch) || head.version != Some(due) {
                    return Err(mismatch(format!(
                        "a {} answer with {changes} changes at epoch {:?} version {:?}; the store was at {held:?}, so version {due} was due",
                        head.kind, head.epoch, head.version
                    )));
                }
                self.counts.versions_checked += 1;
                if let (Some(request), Some(text)) = (&want.request, sent) {
                    model.replays.push(Replay {
                        text: text.to_owned(),
                        request: request.clone(),
                        types: bit,
                        version: head.version,
                    });
                    if model.replays.len() > 4 {
                        model.replays.remove(0);
                    }
                }
            }
        }
        if let Some(resume) = &want.resume {
            self.check_resume(&head, resume, model, forced)?;
        }
        let resumed = head.kind == "resume" && head.resumed == Some(true);
        model.learn(&head);
        if resumed && want.resume.is_some() {
            // What the session holds is known: `check_resume` set it.
            model.certain = true;
        }
        Ok(())
    }

    fn check_resume(
        &mut self,
        head: &Head,
        resume: &WantResume,
        model: &mut Model,
        forced: &mut VecDeque<Step>,
    ) -> Result<(), Failed> {
        match resume {
            WantResume::Refused(error) => {
                if head.resumed != Some(false)
                    || head.error.as_deref() != Some(error.as_str())
                    || head.session.as_deref() != Some(model.session.as_str())
                {
                    return Err(mismatch(format!(
                        "a resume answered resumed={:?} error={:?} session={:?}; due: refused with {error:?} in session {:?}",
                        head.resumed, head.error, head.session, model.session
                    )));
                }
                Ok(())
            }
            WantResume::Resumed { parked, named } => {
                if head.resumed != Some(true)
                    || head.session.as_deref() != Some(parked.session.as_str())
                    || head.token.is_none()
                {
                    return Err(mismatch(format!(
                        "a resume of a detached session (parked {:?} ago) answered resumed={:?} error={:?} session={:?} token={:?}; due: resumed {:?}",
                        parked.when.elapsed(), head.resumed, head.error, head.session, head.token, parked.session
                    )));
                }
                let entries = head.stores.as_deref().unwrap_or(&[]);
                if entries.len() != named.len() {
                    return Err(mismatch(format!(
                        "the resume answer has {} stores; the request named {}",
                        entries.len(),
                        named.len()
                    )));
                }
                let mut stores = parked.stores.clone();
                for (entry, named) in entries.iter().zip(named) {
                    if entry.store != named.store {
                        return Err(mismatch(format!(
                            "the resume answer's store {:?} where {:?} was named",
                            entry.store, named.store
                        )));
                    }
                    if !named.held {
                        if entry.joined != Some(false) {
                            return Err(mismatch(format!(
                                "the resume answer does not say {:?} is not joined",
                                named.store
                            )));
                        }
                        continue;
                    }
                    let (Some(epoch), Some(version)) = (&entry.epoch, entry.version) else {
                        return Err(mismatch(format!(
                            "the resume answer gives no epoch and version for the held store {:?}",
                            named.store
                        )));
                    };
                    if entry.diff.is_some() == entry.data.is_some() {
                        return Err(mismatch(format!(
                            "the resume answer gives both or neither of diff and data for {:?}",
                            named.store
                        )));
                    }
                    if let Some(exact) = &named.exact {
                        if epoch != &exact.epoch
                            || version != exact.version
                            || entry.diff.as_ref().map(Vec::len) != Some(0)
                        {
                            return Err(mismatch(format!(
                                "the client was up to date with {:?} ({exact:?}); the resume answer says epoch {epoch:?} version {version}, diff {:?}",
                                named.store,
                                entry.diff.as_ref().map(Vec::len)
                            )));
                        }
                    }
                    if let Some(store) = our_store(&named.store) {
                        stores.insert(
                            store,
                            Held {
                                epoch: epoch.clone(),
                                version,
                            },
                        );
                    }
                }
                self.counts.resumed += 1;
                model.stores = stores;
                model.replays.clear();
                model.session = parked.session.clone();
                // The mutations answered on the old connection, sent again with their ids.
                for replay in &parked.replays {
                    let mut want = Want::new(replay.types, Some(replay.request.clone()));
                    want.replay = Some(replay.clone());
                    forced.push_back(Step::text(
                        Kind::Replay,
                        replay.text.clone(),
                        Expect::Answer(Box::new(want)),
                    ));
                }
                Ok(())
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Shrinking a failure that does not depend on the model.

    async fn shrink(&mut self, class: Class, inputs: &[Input], own: &str) -> Option<Vec<String>> {
        if matches!(class, Class::Model | Class::Hang) {
            return None;
        }
        // The session id becomes a placeholder, so that a fresh connection can run them.
        let mut inputs: Vec<Input> = inputs
            .iter()
            .map(|input| match input {
                Input::Text(text) => Input::Text(text.replace(own, PLACEHOLDER)),
                other => other.clone(),
            })
            .collect();
        if self.replay(&inputs).await != Some(class) {
            return Some(vec![
                "(it does not fail again alone on a fresh connection: the sequence above is the one that failed)".into(),
            ]);
        }
        let mut at = inputs.len();
        while at > 0 {
            at -= 1;
            if inputs.len() == 1 {
                break;
            }
            let mut fewer = inputs.clone();
            fewer.remove(at);
            if self.replay(&fewer).await == Some(class) {
                inputs = fewer;
            }
        }
        // `show` writes the placeholder's control characters out.
        let placeholder = show(PLACEHOLDER);
        Some(
            inputs
                .iter()
                .map(|input| input.show().replace(&placeholder, "SESSION"))
                .collect(),
        )
    }

    /// Runs `inputs` on a fresh connection with the oracle that needs no model; the class of
    /// the first failure.
    async fn replay(&mut self, inputs: &[Input]) -> Option<Class> {
        let mut conn = open(&self.endpoint).ok()?;
        let panics = thread_panics();
        let mut log = Vec::new();
        let mut outcome = None;
        for input in inputs {
            let input = match input {
                Input::Text(text) => Input::Text(text.replace(PLACEHOLDER, &conn.own)),
                other => other.clone(),
            };
            let result = self.replay_input(&mut conn, input, &mut log).await;
            match with_panic(result, panics) {
                Ok(Flow::Go) => {}
                Ok(_) => break,
                Err(failure) => {
                    outcome = Some(failure.class);
                    break;
                }
            }
        }
        conn.server.abort();
        outcome
    }

    /// Sends one input of a replay and checks what comes back without a model.
    async fn replay_input(
        &mut self,
        conn: &mut Conn,
        input: Input,
        log: &mut Vec<Entry>,
    ) -> Result<Flow, Failed> {
        let answered = match input {
            Input::Activity => return conn.send(input, log).map(|()| Flow::Go),
            Input::Lost => return conn.send(input, log).map(|()| Flow::Dropped),
            Input::Closed => false,
            _ => true,
        };
        conn.send(input, log)?;
        if answered {
            match conn.recv(self.fuzz.patience).await? {
                Out::Text(_) => return Ok(Flow::Go),
                Out::Closed(close) => check_close(&close, &Expect::Anything)?,
            }
        }
        self.expect_end(conn, log).await?;
        Ok(Flow::Ended)
    }
}

/// Checks an answer to a frame sent in a batch: its type is one its frame may get and it
/// echoes its request id (the model only learns from it: the frames of a batch were made
/// before any of their answers came).
fn batch_answer(text: &str, kind: Kind, expect: &Expect, model: &mut Model) -> Result<(), Failed> {
    let (head, bit) = read_head(text, model)?;
    let types = match (kind, expect) {
        (_, Expect::Anything) => JOIN | MUTATION | ERROR | PONG | RESUME,
        (_, Expect::Close(code, _)) => {
            return Err(mismatch(format!("an answer where a close {code} was due")))
        }
        (_, Expect::Nothing | Expect::End) => 0,
        (Kind::Join, _) => JOIN | ERROR,
        (Kind::Mutation | Kind::WrongMutation | Kind::OtherSession, _) => MUTATION | ERROR,
        (_, Expect::Answer(want)) => want.types,
    };
    of_type(&head, bit, types)?;
    if let Expect::Answer(want) = expect {
        if !want.echoed_by(&head) {
            return Err(mismatch(format!(
                "the answer's request is {:?}, not {:?} (answers out of order?)",
                head.request, want.request
            )));
        }
        if bit == RESUME && head.resumed == Some(true) {
            return Err(mismatch(
                "a resume that is not the first message took a session back",
            ));
        }
    }
    model.learn(&head);
    Ok(())
}

/// An answer's head and its type's bit: of a known type, and in the connection's session when
/// it is about a store (whatever the frame was).
fn read_head(text: &str, model: &Model) -> Result<(Head, u8), Failed> {
    let head: Head = serde_json::from_str(text).map_err(|error| {
        mismatch(format!(
            "an answer that is not a JSON object with a known shape: {error}"
        ))
    })?;
    let bit = type_bit(&head.kind);
    if bit == 0 {
        return Err(mismatch(format!(
            "an answer of unknown type {:?}",
            head.kind
        )));
    }
    if matches!(bit, JOIN | MUTATION | ERROR)
        && head.session.as_deref() != Some(model.session.as_str())
    {
        return Err(mismatch(format!(
            "the answer's session is {:?}, not {:?}",
            head.session, model.session
        )));
    }
    Ok((head, bit))
}

/// Whether the answer's type (`bit`) is one of `types`.
fn of_type(head: &Head, bit: u8, types: u8) -> Result<(), Failed> {
    if types & bit == 0 {
        return Err(mismatch(format!(
            "an answer of type {:?}, not {}",
            head.kind,
            type_names(types)
        )));
    }
    Ok(())
}

/// A resume refused with `error`.
fn refused(model: &Model, request: String, error: String) -> Expect {
    let error = if model.started {
        "Resume must be the first message of a connection.".to_owned()
    } else {
        error
    };
    let mut want = Want::new(RESUME, Some(request));
    want.resume = Some(WantResume::Refused(error));
    Expect::Answer(Box::new(want))
}

fn type_names(types: u8) -> String {
    [
        (JOIN, "join"),
        (MUTATION, "mutation"),
        (ERROR, "error"),
        (PONG, "pong"),
        (RESUME, "resume"),
    ]
    .iter()
    .filter(|(bit, _)| types & bit != 0)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join("|")
}

fn check_close(close: &Close, expect: &Expect) -> Result<(), Failed> {
    let Some((_, reason)) = TABLE.iter().find(|(code, _)| *code == close.code) else {
        return Err(failed(
            Class::UnlistedClose,
            format!(
                "a close with code {}, which PROTOCOL.md does not list",
                close.code
            ),
        ));
    };
    if close.code == 1011 {
        return Err(failed(
            Class::Internal,
            format!("closed with 1011 {:?}: the server failed", close.reason),
        ));
    }
    if !close.reason.starts_with(reason) || close.reason.len() > storex::protocol::MAX_CLOSE_REASON
    {
        return Err(mismatch(format!(
            "close {} with the reason {:?}, not {reason:?}",
            close.code, close.reason
        )));
    }
    match expect {
        Expect::Anything => Ok(()),
        Expect::Close(code, wanted) => {
            if *code != close.code || wanted.as_ref().is_some_and(|w| *w != close.reason) {
                Err(mismatch(format!(
                    "closed with {} {:?}; due: {code} {wanted:?}",
                    close.code, close.reason
                )))
            } else {
                Ok(())
            }
        }
        Expect::Answer(want) => Err(mismatch(format!(
            "closed with {} {:?} where an answer ({}) was due",
            close.code,
            close.reason,
            type_names(want.types)
        ))),
        Expect::Nothing | Expect::End => Err(mismatch(format!(
            "closed with {} where nothing was due",
            close.code
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// The diff part.

/// A typed state for diff pairs: what a store holds.
#[derive(Diff, Serialize, Clone, Debug, PartialEq)]
pub struct Typed {
    /// Cards, by position.
    pub cards: Vec<Card>,
    /// A map by key.
    pub tags: BTreeMap<String, u32>,
    /// Floats, non-finite ones included.
    pub cursor: Point,
    /// An option of a nested struct.
    pub pinned: Option<Card>,
    /// Free JSON.
    pub meta: Value,
    /// A tuple and a fixed array.
    pub pair: (i32, String),
    /// Fixed size.
    pub grid: [u8; 3],
}

fn card() -> impl Strategy<Value = Card> {
    (
        prop::sample::select(vec!["", "a", "b", "milk"]),
        any::<bool>(),
        prop::option::of(0u16..3),
    )
        .prop_map(|(title, done, points)| Card {
            title: title.to_owned(),
            done,
            points,
        })
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            1.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY
        ]),
        any::<f64>(),
    ]
}

fn typed() -> impl Strategy<Value = Typed> {
    (
        prop::collection::vec(card(), 0..5),
        prop::collection::btree_map(key(), 0u32..3, 0..4),
        (float(), float()).prop_map(|(x, y)| Point { x, y }),
        prop::option::of(card()),
        json(),
        ((-2i32..2), prop::sample::select(vec!["", "a"])),
        prop::array::uniform3(0u8..2),
    )
        .prop_map(|(cards, tags, cursor, pinned, meta, (n, s), grid)| Typed {
            cards,
            tags,
            cursor,
            pinned,
            meta,
            pair: (n, s.to_owned()),
            grid,
        })
}

fn segment() -> impl Strategy<Value = PathSegment> {
    prop_oneof![
        key().prop_map(PathSegment::Key),
        (0usize..6).prop_map(PathSegment::Index),
        prop::sample::select(vec![usize::MAX, usize::MAX / 2, 1 << 40])
            .prop_map(PathSegment::Index),
    ]
}

fn path() -> impl Strategy<Value = Vec<PathSegment>> {
    prop::collection::vec(segment(), 0..4)
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (path(), json()).prop_map(|(path, value)| Change::Update { path, value }),
        (path(), json()).prop_map(|(path, value)| Change::Insert { path, value }),
        path().prop_map(|path| Change::Delete { path }),
    ]
}

fn random_changes() -> impl Strategy<Value = (Value, Vec<Change>)> {
    (json(), prop::collection::vec(change(), 0..6))
}

/// The property for one pair; the number of changes, or what is wrong.
fn check_pair<T: Diff + Serialize>((old, new): &(T, T)) -> Result<usize, String> {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let changes = diff(old, new).map_err(|error| format!("diff failed: {error}"))?;
        let mut state = serde_json::to_value(old).map_err(|e| e.to_string())?;
        let expected = serde_json::to_value(new).map_err(|e| e.to_string())?;
        apply(&mut state, &changes).map_err(|error| {
            format!(
                "apply failed: {error}; changes: {}",
                serde_json::to_string(&changes).unwrap_or_default()
            )
        })?;
        let (text, expected_text) = (state.to_string(), expected.to_string());
        if state != expected || text != expected_text {
            return Err(format!(
                "apply(old, diff(old, new)) gave {state}, not {expected}; changes: {}",
                serde_json::to_string(&changes).unwrap_or_default()
            ));
        }
        let same = diff(old, old).map_err(|error| format!("diff failed: {error}"))?;
        if !same.is_empty() {
            return Err(format!(
                "diff(old, old) is not empty: {}",
                serde_json::to_string(&same).unwrap_or_default()
            ));
        }
        Ok(changes.len())
    }));
    outcome.unwrap_or_else(|_| Err(format!("a panic: {}", last_panic())))
}

/// `Ok(0)` (its changes are not counted) when applying the changes did not panic.
fn check_random((value, changes): &(Value, Vec<Change>)) -> Result<usize, String> {
    let mut state = value.clone();
    std::panic::catch_unwind(AssertUnwindSafe(|| apply(&mut state, changes)))
        .map(|_| 0)
        .map_err(|_| format!("apply panicked: {}", last_panic()))
}

fn show_pair<T: Serialize>(pair: &(T, T)) -> Vec<String> {
    vec![
        format!(
            "old: {}",
            serde_json::to_string(&pair.0).unwrap_or_default()
        ),
        format!(
            "new: {}",
            serde_json::to_string(&pair.1).unwrap_or_default()
        ),
    ]
}

fn show_random(case: &(Value, Vec<Change>)) -> Vec<String> {
    vec![
        format!("value: {}", case.0),
        format!(
            "changes: {}",
            serde_json::to_string(&case.1).unwrap_or_default()
        ),
    ]
}

/// Generates one case of `strategy`, checks it, and shrinks it when it fails.
fn case<S: Strategy>(
    runner: &mut TestRunner,
    strategy: &S,
    check: impl Fn(&S::Value) -> Result<usize, String>,
    show: impl Fn(&S::Value) -> Vec<String>,
    at: String,
) -> Result<usize, Box<Failure>> {
    let Ok(mut tree) = strategy.new_tree(runner) else {
        return Ok(0);
    };
    let original = tree.current();
    let what = match check(&original) {
        Ok(changes) => return Ok(changes),
        Err(what) => what,
    };
    let mut smallest = (tree.current(), what.clone());
    let mut budget = 2_000;
    if tree.simplify() {
        while budget > 0 {
            budget -= 1;
            match check(&tree.current()) {
                Err(what) => {
                    smallest = (tree.current(), what);
                    if !tree.simplify() {
                        break;
                    }
                }
                Ok(_) => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    Err(Box::new(Failure {
        what,
        at,
        trace: show(&original),
        minimal: Some({
            let mut lines = show(&smallest.0);
            lines.push(format!("fails with: {}", smallest.1));
            lines
        }),
    }))
}

fn diffs_worker(fuzz: &Fuzz, worker: usize, quota: u64) -> (DiffCounts, Vec<Failure>) {
    let config = proptest::test_runner::Config {
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng_for(fuzz.seed, worker, 2));
    let pairs = json_pair();
    let typed_pairs = (typed(), typed());
    let random = random_changes();
    let mut counts = DiffCounts::default();
    let mut failures = Vec::new();
    for i in 0..quota {
        if failures.len() >= fuzz.max_failures {
            break;
        }
        let at = format!("worker {worker}, diff input {i}");
        let result = match i % 20 {
            0..=9 => {
                counts.json_pairs += 1;
                case(&mut runner, &pairs, check_pair, show_pair, at)
            }
            10..=16 => {
                counts.typed_pairs += 1;
                case(&mut runner, &typed_pairs, check_pair, show_pair, at)
            }
            _ => {
                counts.random_changes += 1;
                case(&mut runner, &random, check_random, show_random, at)
            }
        };
        match result {
            Ok(changes) => counts.changes += changes as u64,
            Err(failure) => failures.push(*failure),
        }
    }
    (counts, failures)
}

impl Mergeable for FrameCounts {
    fn merge(&mut self, other: &Self) {
        for kind in Kind::ALL {
            self.inputs[kind.index()] += other.inputs[kind.index()];
            self.answered[kind.index()] += other.answered[kind.index()];
            self.cut[kind.index()] += other.cut[kind.index()];
        }
        for (key, count) in &other.closes {
            *self.closes.entry(*key).or_default() += count;
        }
        self.connections += other.connections;
        self.resumed += other.resumed;
        self.versions_checked += other.versions_checked;
        self.batches += other.batches;
    }
}

impl Mergeable for DiffCounts {
    fn merge(&mut self, other: &Self) {
        self.json_pairs += other.json_pairs;
        self.typed_pairs += other.typed_pairs;
        self.random_changes += other.random_changes;
        self.changes += other.changes;
    }
}
