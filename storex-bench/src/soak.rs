//! The soak (issue 10): N clients × M mutations against a real server, every client's socket
//! killed (dropped without a close frame) at random moments at least K times, server-side
//! mutations interleaved. Each client resumes its session, sends again what was not answered with
//! the original request ids, and keeps a mirror of its state from the diffs; at the end every
//! client's state on the server is compared with the mirror and with the mutations that were
//! acknowledged: none lost, none applied twice. Then the clients leave (half with a close frame,
//! half by dropping their socket, so that their sessions wait out the resume TTL) and the server
//! must drop to no session at all, its resident memory back near its baseline.
//!
//! The store is [`Soak`](crate::server::Soak): client `append(n)`, server-side `tick`. Client `c`
//! appends `value(c, 1)`, `value(c, 2)`, … with request ids 1, 2, …; so its `mine` must end as
//! exactly those values in order, and its `ticks` as the number of ticks the driver issued (all
//! of them while every session was alive).

use std::collections::{HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Barrier, Semaphore};

use crate::client::{self, Socket};
use crate::server::{Stats, Triggered, SOAK_STORE};
use crate::sessions::source_address;
use crate::stats::Percentiles;

/// One soak run.
#[derive(Debug, Clone, Copy)]
pub struct Soak {
    /// How many clients (one session each).
    pub clients: usize,
    /// Mutations each client commits (all of them acknowledged in the end).
    pub mutations: u64,
    /// Kills of each client's socket, at random moments spread over its run (some of them add
    /// one more kill in the middle of the resume that follows).
    pub kills: u32,
    /// Mutations each client keeps in flight (at most the server's `remembered_requests`, 256).
    pub window: usize,
    /// How often the driver issues a server-side `tick` to every instance.
    pub tick_every: Duration,
    /// The server's resume TTL: how long a dropped client's session may wait before it ends.
    pub resume_ttl: Duration,
    /// Client source addresses 127.0.0.2 … 127.0.0.(1 + sources), in turn; 0: the default.
    pub sources: u8,
    /// How many clients connect and join at once at the start.
    pub concurrency: usize,
    /// The seed of every random choice (kill moments, reconnect delays).
    pub seed: u64,
    /// The reconnect delay after a kill, as storex.js computes it: attempt `a` waits between
    /// half and all of `min(30 s, base × 2^a)` (its default base is 500 ms).
    pub reconnect_base: Duration,
}

impl Default for Soak {
    /// The full soak: 1,000 clients × 1,000 mutations, 3 kills each.
    fn default() -> Self {
        Self {
            clients: 1_000,
            mutations: 1_000,
            kills: 3,
            window: 32,
            tick_every: Duration::from_millis(50),
            resume_ttl: Duration::from_secs(15),
            sources: 16,
            concurrency: 256,
            seed: 10,
            reconnect_base: Duration::from_millis(500),
        }
    }
}

/// The server's resident memory over the run, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rss {
    /// Before the first client connected.
    pub baseline: u64,
    /// The largest figure read during the run (read at each tick and once all were done).
    pub peak: u64,
    /// After every client left, the server held no session any more, and a margin passed.
    pub after: u64,
}

impl Rss {
    /// `after` / `baseline`.
    pub fn ratio(&self) -> f64 {
        self.after as f64 / self.baseline.max(1) as f64
    }

    /// Whether `after` is within 10 % of `baseline` (the check).
    pub fn recovered(&self) -> bool {
        self.after * 10 <= self.baseline * 11
    }
}

/// What a soak found. [`SoakReport::passed`] says whether every check held.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// The run.
    pub soak: Soak,
    /// Clients that ran to the end and whose final state checked out.
    pub clients_verified: usize,
    /// Mutations acknowledged (answered, fresh or replayed), over all clients.
    pub acknowledged: u64,
    /// Sockets killed without a close frame (the planned kills and the kills during a resume).
    pub kills: u64,
    /// The kills among those that hit a connection whose resume answer had not arrived.
    pub kills_during_resume: u64,
    /// The fewest kills one client went through.
    pub min_kills_per_client: u64,
    /// Resumes accepted: with the missed diffs, and with the whole state.
    pub resumed_with_diff: u64,
    /// See `resumed_with_diff`.
    pub resumed_with_data: u64,
    /// Resumes refused (each one a failure).
    pub refused: u64,
    /// From the reconnect (after the kill) to the resume answer.
    pub resume_latency: Percentiles,
    /// Mutations sent again after a resume with their original request ids.
    pub resent: u64,
    /// Answers with `"replayed":true` (the mutation had run before the kill; not run again).
    pub replayed: u64,
    /// Pushes of ticks received live.
    pub pushes: u64,
    /// Frames whose version the client already held, not replayed answers (skipped).
    pub stale: u64,
    /// Server-side ticks issued (all while every session was alive).
    pub ticks: u64,
    /// Sessions that some tick did not reach (summed over the ticks).
    pub tick_shortfall: u64,
    /// Acknowledged mutations missing from the server's final state.
    pub lost: u64,
    /// Mutations present more than once in the server's final state (or answered fresh again).
    pub duplicated: u64,
    /// Disagreements between a client's mirror and the server (state, versions, epochs, ticks,
    /// values the client never sent).
    pub mismatches: u64,
    /// Clients that failed (an error of the run or a check), and the first errors.
    pub failed_clients: usize,
    /// See `failed_clients`.
    pub failures: Vec<String>,
    /// From the first connect to the last client's final check.
    pub elapsed: Duration,
    /// From the start barrier (all joined) to the last mutation acknowledged.
    pub mutation_phase: Duration,
    /// From the last client's leaving to the server holding no session, detached or not (the
    /// sessions of clients that dropped their socket end when the resume TTL has passed).
    pub drained: Option<Duration>,
    /// Live and detached sessions when the wait for none ended.
    pub stats_after: Option<Stats>,
    /// The server's resident memory, when it can be read.
    pub rss: Option<Rss>,
}

impl SoakReport {
    /// Whether every check held: every client verified, all mutations acknowledged, nothing
    /// lost, duplicated or mismatched, every kill resumed, every tick reached every session, no
    /// session left after the TTL, and the memory back within 10 % (when it was read).
    pub fn passed(&self) -> bool {
        self.verdicts().iter().all(|(_, ok)| *ok)
    }

    /// Each check and whether it held.
    pub fn verdicts(&self) -> Vec<(&'static str, bool)> {
        let soak = &self.soak;
        let sessions_left = self
            .stats_after
            .is_some_and(|stats| stats.sessions == 0 && stats.detached == 0);
        vec![
            (
                "every client verified",
                self.clients_verified == soak.clients,
            ),
            (
                "every mutation acknowledged",
                self.acknowledged == soak.clients as u64 * soak.mutations,
            ),
            ("0 acknowledged mutations lost", self.lost == 0),
            ("0 mutations applied twice", self.duplicated == 0),
            ("0 mirror mismatches", self.mismatches == 0),
            ("0 resumes refused", self.refused == 0),
            (
                "every client killed enough times",
                self.min_kills_per_client >= u64::from(soak.kills),
            ),
            ("every tick reached every session", self.tick_shortfall == 0),
            ("no session left after the TTL", sessions_left),
            (
                "memory back within 10 % of the baseline",
                self.rss.is_none_or(|rss| rss.recovered()),
            ),
        ]
    }
}

/// A small, seeded random generator (SplitMix64): runs are reproducible from `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// The number client `client` appends with its `seq`-th mutation: unique over all clients.
pub fn value(client: usize, seq: u64) -> u64 {
    (client as u64 + 1) * 1_000_000_000 + seq
}

/// What one client counted.
#[derive(Debug, Default)]
struct Tally {
    verified: bool,
    acknowledged: u64,
    kills: u64,
    kills_during_resume: u64,
    resumed_with_diff: u64,
    resumed_with_data: u64,
    refused: u64,
    resume_nanos: Vec<u64>,
    resent: u64,
    replayed: u64,
    pushes: u64,
    stale: u64,
    lost: u64,
    duplicated: u64,
    mismatches: u64,
    error: Option<String>,
}

/// Runs one soak against `server`; `rss_kib` reads the server's resident set (None when the
/// server shares this process). An `Err` is a failure of the driver itself (the control routes);
/// the checks are in the report.
pub async fn run(
    server: SocketAddr,
    soak: Soak,
    rss_kib: impl Fn() -> Option<u64>,
) -> Result<SoakReport, String> {
    let baseline = rss_kib();
    let started = Instant::now();
    let barrier = Arc::new(Barrier::new(soak.clients + 1));
    let opening = Arc::new(Semaphore::new(soak.concurrency.max(1)));
    let (done, mut done_events) = mpsc::unbounded_channel();
    let (ticks_sender, ticks_final) = watch::channel(None::<u64>);
    let mut seeds = Rng::new(soak.seed);
    let tasks: Vec<_> = (0..soak.clients)
        .map(|index| {
            let plan = Plan {
                server,
                source: source_address(index, soak.sources),
                index,
                soak,
                seed: seeds.next_u64(),
            };
            tokio::spawn(client_run(
                plan,
                barrier.clone(),
                opening.clone(),
                done.clone(),
                ticks_final.clone(),
            ))
        })
        .collect();
    drop(done);
    barrier.wait().await;
    let phase_started = Instant::now();

    // Ticks while any client still commits; every session is alive (attached or detached) all
    // along, so each tick must reach every one of them.
    let mut peak = baseline;
    let mut ticks = 0u64;
    let mut tick_shortfall = 0u64;
    let mut finished = 0;
    let mut ticker = tokio::time::interval(soak.tick_every.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    while finished < soak.clients {
        tokio::select! {
            event = done_events.recv() => match event {
                Some(()) => finished += 1,
                None => break,
            },
            _ = ticker.tick() => {
                let answer = client::http(server, "POST", "/bench/soak/tick").await?;
                let triggered: Triggered = serde_json::from_value(answer)
                    .map_err(|e| format!("tick answer: {e}"))?;
                ticks += 1;
                tick_shortfall += soak.clients.saturating_sub(triggered.reached) as u64;
                peak = peak.max(rss_kib());
            }
        }
    }
    let mutation_phase = phase_started.elapsed();
    peak = peak.max(rss_kib());
    let _ = ticks_sender.send(Some(ticks));

    let mut report = SoakReport {
        soak,
        min_kills_per_client: u64::MAX,
        ticks,
        tick_shortfall,
        mutation_phase,
        ..SoakReport::default()
    };
    let mut resume_nanos = Vec::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let tally = match task.await {
            Ok(tally) => tally,
            Err(panic) => Tally {
                error: Some(format!("the task panicked: {panic}")),
                ..Tally::default()
            },
        };
        report.clients_verified += usize::from(tally.verified);
        report.acknowledged += tally.acknowledged;
        report.kills += tally.kills;
        report.kills_during_resume += tally.kills_during_resume;
        report.min_kills_per_client = report.min_kills_per_client.min(tally.kills);
        report.resumed_with_diff += tally.resumed_with_diff;
        report.resumed_with_data += tally.resumed_with_data;
        report.refused += tally.refused;
        report.resent += tally.resent;
        report.replayed += tally.replayed;
        report.pushes += tally.pushes;
        report.stale += tally.stale;
        report.lost += tally.lost;
        report.duplicated += tally.duplicated;
        report.mismatches += tally.mismatches;
        resume_nanos.extend(tally.resume_nanos);
        if let Some(error) = tally.error {
            report.failed_clients += 1;
            if report.failures.len() < 20 {
                report.failures.push(format!("client {index}: {error}"));
            }
        }
    }
    if soak.clients == 0 {
        report.min_kills_per_client = 0;
    }
    report.resume_latency = Percentiles::of_nanos(&mut resume_nanos);
    report.elapsed = started.elapsed();

    // Every client has left (half closed, half dropped): the dropped ones' sessions end when
    // their TTL passes. Wait for the server to hold none, then for the memory to settle.
    let left = Instant::now();
    let deadline = left + soak.resume_ttl + client::PATIENCE * 2;
    loop {
        let answer = client::http(server, "GET", "/bench/stats").await?;
        let stats: Stats =
            serde_json::from_value(answer).map_err(|e| format!("stats answer: {e}"))?;
        report.stats_after = Some(stats);
        if stats.sessions == 0 && stats.detached == 0 {
            report.drained = Some(left.elapsed());
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.rss = match (baseline, peak, rss_kib()) {
        (Some(baseline), Some(peak), Some(after)) => Some(Rss {
            baseline,
            peak,
            after,
        }),
        _ => None,
    };
    Ok(report)
}

/// One client's fixed inputs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    index: usize,
    soak: Soak,
    seed: u64,
}

/// One client: connect and join, wait for the others, commit with kills and resumes, tell the
/// driver it is done, check the final state, leave.
async fn client_run(
    plan: Plan,
    barrier: Arc<Barrier>,
    opening: Arc<Semaphore>,
    done: mpsc::UnboundedSender<()>,
    mut ticks_final: watch::Receiver<Option<u64>>,
) -> Tally {
    let joined = {
        let _permit = opening.acquire().await;
        Client::join(plan).await
    };
    // Everyone waits, even a client that failed, so that the others are not stuck.
    barrier.wait().await;
    let mut client = match joined {
        Ok(client) => client,
        Err(error) => {
            let _ = done.send(());
            return Tally {
                error: Some(error),
                ..Tally::default()
            };
        }
    };
    let committed = client.commit_all().await;
    let _ = done.send(());
    let outcome = match committed {
        Ok(()) => client.verify(&mut ticks_final).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => client.tally.verified = true,
        Err(error) => client.tally.error = Some(error),
    }
    client.leave().await;
    client.tally
}

/// A soak client: its socket, its session and the mirror of its state.
struct Client {
    plan: Plan,
    rng: Rng,
    /// `None` between a kill and the resume.
    socket: Option<Socket>,
    session: String,
    token: String,
    epoch: String,
    /// The version the mirror is at.
    version: u64,
    /// The mirror: the state as the diffs received made it.
    state: Value,
    /// The next mutation to send (1 …= mutations).
    next_seq: u64,
    /// Sent and not answered yet, oldest first.
    in_flight: VecDeque<u64>,
    /// The sent counts at which a kill is armed, ascending; `kills_done` of them are done.
    kill_points: Vec<u64>,
    kills_done: usize,
    /// When the armed kill happens.
    kill_at: Option<tokio::time::Instant>,
    /// How many resumes this client sent (request ids `r1`, `r2`, …).
    resumes: u64,
    tally: Tally,
}

impl Client {
    /// Connects and joins the soak store.
    async fn join(plan: Plan) -> Result<Self, String> {
        let mut rng = Rng::new(plan.seed);
        let mutations = plan.soak.mutations.max(1);
        let kills = u64::from(plan.soak.kills);
        // One kill in each of `kills` equal stretches of the run, at a random point in it.
        let kill_points = (0..kills)
            .map(|k| {
                let from = k * mutations / kills.max(1);
                let to = ((k + 1) * mutations / kills.max(1)).max(from + 1);
                from + 1 + rng.below(to - from)
            })
            .collect();
        let mut socket = client::connect(plan.server, "/storex", plan.source).await?;
        let join = json!({"type": "join", "store": SOAK_STORE, "data": {}, "request": "join"});
        client::feed(&mut socket, join.to_string()).await?;
        client::flush(&mut socket).await?;
        let text = client::next_text(&mut socket).await?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| format!("join answer: {e}"))?;
        if answer["type"] != "join" || answer["request"] != "join" || answer["store"] != SOAK_STORE
        {
            return Err(format!("unexpected join answer: {text}"));
        }
        let text_field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("a join answer without {name}: {text}"))
        };
        let state = answer["data"].clone();
        if state != json!({"mine": [], "ticks": 0}) || answer["version"] != 0 {
            return Err(format!("unexpected initial state: {text}"));
        }
        Ok(Self {
            plan,
            rng,
            socket: Some(socket),
            session: text_field("session")?,
            token: text_field("token")?,
            epoch: text_field("epoch")?,
            version: 0,
            state,
            next_seq: 1,
            in_flight: VecDeque::new(),
            kill_points,
            kills_done: 0,
            kill_at: None,
            resumes: 0,
            tally: Tally::default(),
        })
    }

    fn socket(&mut self) -> Result<&mut Socket, String> {
        self.socket
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    fn mutation_message(&self, seq: u64) -> String {
        json!({
            "type": "mutation",
            "store": SOAK_STORE,
            "session": self.session,
            "data": {"name": "append", "data": [value(self.plan.index, seq)]},
            "request": seq,
        })
        .to_string()
    }

    /// How many numbers the mirror's `mine` holds.
    fn mine_len(&self) -> usize {
        self.state["mine"].as_array().map_or(0, Vec::len)
    }

    fn finished(&self) -> bool {
        self.next_seq > self.plan.soak.mutations
            && self.in_flight.is_empty()
            && self.kills_done == self.kill_points.len()
    }

    /// Commits every mutation, killing the socket at the planned moments, until all are
    /// acknowledged and every kill is done.
    async fn commit_all(&mut self) -> Result<(), String> {
        let window = self.plan.soak.window.clamp(1, 256);
        loop {
            let mut fed = false;
            while self.in_flight.len() < window && self.next_seq <= self.plan.soak.mutations {
                let seq = self.next_seq;
                let message = self.mutation_message(seq);
                client::feed(self.socket()?, message).await?;
                self.in_flight.push_back(seq);
                self.next_seq += 1;
                fed = true;
            }
            if fed {
                client::flush(self.socket()?).await?;
            }
            let sent = self.next_seq - 1;
            if self.kill_at.is_none()
                && self
                    .kill_points
                    .get(self.kills_done)
                    .is_some_and(|point| sent >= *point)
            {
                // A random moment shortly after the point: some answers in flight, some not.
                let delay = Duration::from_micros(self.rng.below(3_000));
                self.kill_at = Some(tokio::time::Instant::now() + delay);
            }
            if self.finished() {
                return Ok(());
            }
            let kill_at = self.kill_at;
            let socket = self.socket()?;
            let frame = tokio::select! {
                biased;
                () = sleep_until(kill_at), if kill_at.is_some() => None,
                frame = client::next_text(socket) => Some(frame?),
            };
            match frame {
                Some(text) => self.on_frame(&text)?,
                None => self.kill_and_resume().await?,
            }
        }
    }

    /// Applies a frame of the session: an answer to the oldest mutation in flight, or a push.
    fn on_frame(&mut self, text: &str) -> Result<(), String> {
        let frame: Value = serde_json::from_str(text).map_err(|e| format!("a frame: {e}"))?;
        if frame["type"] == "pong" {
            return Ok(());
        }
        if frame["type"] != "mutation" || frame["store"] != SOAK_STORE {
            return Err(format!("unexpected frame: {text}"));
        }
        if frame["session"] != self.session.as_str() || frame["epoch"] != self.epoch.as_str() {
            self.tally.mismatches += 1;
            return Err(format!(
                "a frame of another session or instance (held {} {}): {text}",
                self.session, self.epoch
            ));
        }
        let version = frame["version"]
            .as_u64()
            .ok_or_else(|| format!("a frame without version: {text}"))?;
        let replayed = frame["replayed"] == true;
        if frame["request"].is_null() {
            // A push: a tick.
            if replayed {
                self.tally.mismatches += 1;
                return Err(format!("a replayed push: {text}"));
            }
            if version <= self.version {
                self.tally.stale += 1;
                return Ok(());
            }
            let ticks = self.state["ticks"].as_u64().unwrap_or(0);
            self.apply(&frame, version, text)?;
            if self.state["ticks"] != ticks + 1 {
                self.tally.mismatches += 1;
                return Err(format!("a push that is not one tick: {text}"));
            }
            self.tally.pushes += 1;
            return Ok(());
        }
        let Some(&seq) = self.in_flight.front() else {
            self.tally.mismatches += 1;
            return Err(format!("an answer with nothing in flight: {text}"));
        };
        // One session answers in order: the next answer must be the oldest request's.
        if frame["request"] != seq {
            self.tally.mismatches += 1;
            return Err(format!("expected the answer to request {seq}, got {text}"));
        }
        let held = u64::try_from(self.mine_len()).unwrap_or(u64::MAX);
        if replayed {
            // It ran before a kill; the resume already brought its change.
            self.tally.replayed += 1;
            if version > self.version || !frame["diff"].as_array().is_some_and(Vec::is_empty) {
                self.tally.mismatches += 1;
                return Err(format!(
                    "a replayed answer beyond version {}: {text}",
                    self.version
                ));
            }
            if held < seq {
                self.tally.lost += 1;
                return Err(format!(
                    "request {seq} answered as replayed, but the state holds {held} numbers"
                ));
            }
        } else {
            if held >= seq {
                self.tally.duplicated += 1;
                return Err(format!(
                    "request {seq} ran again: the state held it already ({text})"
                ));
            }
            if version <= self.version {
                self.tally.stale += 1;
            } else {
                self.apply(&frame, version, text)?;
                let mine = &self.state["mine"];
                if self.mine_len() as u64 != seq
                    || mine[self.mine_len() - 1] != value(self.plan.index, seq)
                {
                    self.tally.mismatches += 1;
                    return Err(format!("after request {seq} the mirror holds {mine}"));
                }
            }
        }
        self.in_flight.pop_front();
        self.tally.acknowledged += 1;
        Ok(())
    }

    /// Applies a frame's diff, which must lead from the version held to the next.
    fn apply(&mut self, frame: &Value, version: u64, text: &str) -> Result<(), String> {
        if version != self.version + 1 {
            self.tally.mismatches += 1;
            return Err(format!(
                "a gap: version {version} after {} ({text})",
                self.version
            ));
        }
        client::apply_diff(&mut self.state, frame).inspect_err(|_| self.tally.mismatches += 1)?;
        self.version = version;
        Ok(())
    }

    /// Drops the socket without a close frame, reconnects after a short random delay, resumes
    /// the session (sometimes killing that connection too before its answer), and sends again
    /// every mutation in flight with its original request id.
    async fn kill_and_resume(&mut self) -> Result<(), String> {
        self.socket = None; // dropped: no close frame, as when the network goes
        self.tally.kills += 1;
        self.kills_done += 1;
        self.kill_at = None;
        let mut kill_during_resume = self.rng.below(4) == 0;
        // What happened since the kill, for the error of a refused resume.
        let killed = Instant::now();
        let mut trail = Vec::new();
        let since =
            |at: Instant| format!("{:.0} ms", at.duration_since(killed).as_secs_f64() * 1e3);
        let mut attempt = 0;
        loop {
            // storex.js's backoff: capped exponential with equal jitter.
            let base = self.plan.soak.reconnect_base.as_micros();
            let full = u64::try_from(base << attempt).unwrap_or(u64::MAX);
            attempt = (attempt + 1).min(16);
            let full = full.min(30_000_000);
            let delay = Duration::from_micros(full / 2 + self.rng.below(full / 2 + 1));
            tokio::time::sleep(delay).await;
            let reconnected = Instant::now();
            let mut socket = client::connect(self.plan.server, "/storex", self.plan.source).await?;
            self.resumes += 1;
            let request = format!("r{}", self.resumes);
            let resume = json!({
                "type": "resume",
                "session": self.session,
                "token": self.token,
                "stores": [{"store": SOAK_STORE, "epoch": self.epoch, "version": self.version}],
                "request": request,
            });
            client::feed(&mut socket, resume.to_string()).await?;
            client::flush(&mut socket).await?;
            trail.push(format!("{request} sent at {}", since(Instant::now())));
            if kill_during_resume {
                kill_during_resume = false;
                tokio::time::sleep(Duration::from_micros(self.rng.below(2_000))).await;
                drop(socket);
                trail.push(format!("killed at {}", since(Instant::now())));
                self.tally.kills += 1;
                self.tally.kills_during_resume += 1;
                continue;
            }
            let text = client::next_text(&mut socket).await?;
            self.tally
                .resume_nanos
                .push(u64::try_from(reconnected.elapsed().as_nanos()).unwrap_or(u64::MAX));
            self.resumed(&text, &request).map_err(|error| {
                let answered = since(Instant::now());
                format!(
                    "{error} (after the kill: {}, answered at {answered})",
                    trail.join(", ")
                )
            })?;
            let resend: Vec<String> = self
                .in_flight
                .iter()
                .map(|seq| self.mutation_message(*seq))
                .collect();
            self.tally.resent += resend.len() as u64;
            for message in resend {
                client::feed(&mut socket, message).await?;
            }
            client::flush(&mut socket).await?;
            self.socket = Some(socket);
            return Ok(());
        }
    }

    /// Checks a resume answer and brings the mirror up to date with it.
    fn resumed(&mut self, text: &str, request: &str) -> Result<(), String> {
        let answer: Value =
            serde_json::from_str(text).map_err(|e| format!("resume answer: {e}"))?;
        if answer["type"] != "resume" || answer["request"] != request {
            return Err(format!(
                "the first frame after a resume is not its answer: {text}"
            ));
        }
        if answer["resumed"] != true {
            self.tally.refused += 1;
            return Err(format!(
                "resume of session {} at version {} refused: {text}",
                self.session, self.version
            ));
        }
        if answer["session"] != self.session.as_str() {
            self.tally.mismatches += 1;
            return Err(format!("resumed another session: {text}"));
        }
        if let Some(token) = answer["token"].as_str() {
            self.token = token.to_owned();
        }
        let stores = answer["stores"].as_array().map(Vec::as_slice);
        let [store] = stores.unwrap_or_default() else {
            self.tally.mismatches += 1;
            return Err(format!("a resume answer without exactly one store: {text}"));
        };
        if store["store"] != SOAK_STORE || store["epoch"] != self.epoch.as_str() {
            self.tally.mismatches += 1;
            return Err(format!("the resumed store is another instance: {text}"));
        }
        let version = store["version"]
            .as_u64()
            .ok_or_else(|| format!("a resumed store without version: {text}"))?;
        if version < self.version {
            self.tally.mismatches += 1;
            return Err(format!(
                "resumed at version {version} below {}",
                self.version
            ));
        }
        if store["diff"].is_array() {
            client::apply_diff(&mut self.state, store)
                .inspect_err(|_| self.tally.mismatches += 1)?;
            self.tally.resumed_with_diff += 1;
        } else if store["data"].is_object() {
            self.state = store["data"].clone();
            self.tally.resumed_with_data += 1;
        } else {
            self.tally.mismatches += 1;
            return Err(format!(
                "a resumed store with neither diff nor data: {text}"
            ));
        }
        self.version = version;
        // The server ran every acknowledged mutation and maybe some of those in flight, in
        // order: `mine` must be exactly values 1 …= j for such a j.
        let acknowledged = self.next_seq - 1 - self.in_flight.len() as u64;
        let mine = self.state["mine"].as_array().cloned().unwrap_or_default();
        let j = mine.len() as u64;
        let exact = mine
            .iter()
            .zip(1..)
            .all(|(number, seq)| *number == value(self.plan.index, seq));
        if j < acknowledged || j > self.next_seq - 1 || !exact {
            self.tally.mismatches += 1;
            return Err(format!(
                "after the resume `mine` holds {j} numbers ({}), {acknowledged} acknowledged, {} sent",
                if exact { "in order" } else { "not 1 … j" },
                self.next_seq - 1
            ));
        }
        Ok(())
    }

    /// After every client is done: waits for the final tick count, receives the pushes up to
    /// it, then joins again (a held store answers the instance's state) and compares.
    async fn verify(
        &mut self,
        ticks_final: &mut watch::Receiver<Option<u64>>,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + client::PATIENCE * 20;
        let ticks = loop {
            if let Some(ticks) = *ticks_final.borrow_and_update() {
                break ticks;
            }
            let socket = self.socket()?;
            tokio::select! {
                changed = ticks_final.changed() => {
                    changed.map_err(|_| "the driver went away".to_owned())?;
                }
                frame = client::next_text_unbounded(socket) => self.on_frame(&frame?)?,
                () = tokio::time::sleep_until(deadline) => {
                    return Err("the other clients did not finish".into());
                }
            }
        };
        while self.state["ticks"].as_u64().unwrap_or(0) < ticks {
            let text = client::next_text(self.socket()?).await?;
            self.on_frame(&text)?;
        }
        let join = json!({"type": "join", "store": SOAK_STORE, "data": {}, "request": "final"});
        let socket = self.socket()?;
        client::feed(socket, join.to_string()).await?;
        client::flush(socket).await?;
        let answer = loop {
            let text = client::next_text(self.socket()?).await?;
            let frame: Value = serde_json::from_str(&text).map_err(|e| format!("a frame: {e}"))?;
            if frame["request"] == "final" {
                break frame;
            }
            self.on_frame(&text)?;
        };
        if answer["type"] != "join"
            || answer["session"] != self.session.as_str()
            || answer["epoch"] != self.epoch.as_str()
        {
            self.tally.mismatches += 1;
            return Err(format!(
                "the final join answered another instance: {answer}"
            ));
        }
        let data = &answer["data"];
        // What the server holds, against what was acknowledged: 1 …= mutations, in order.
        let mine: Vec<u64> = data["mine"]
            .as_array()
            .map(|mine| mine.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let expected: Vec<u64> = (1..=self.plan.soak.mutations)
            .map(|seq| value(self.plan.index, seq))
            .collect();
        let present: HashSet<u64> = mine.iter().copied().collect();
        let wanted: HashSet<u64> = expected.iter().copied().collect();
        let lost = expected.iter().filter(|v| !present.contains(v)).count() as u64;
        let duplicated = (mine.len() - present.len()) as u64;
        let foreign = present.iter().filter(|v| !wanted.contains(v)).count() as u64;
        self.tally.lost += lost;
        self.tally.duplicated += duplicated;
        let mut problems = Vec::new();
        if lost + duplicated + foreign > 0 {
            problems.push(format!(
                "{lost} lost, {duplicated} duplicated, {foreign} never sent"
            ));
        }
        if foreign > 0 || (lost + duplicated == 0 && mine != expected) {
            self.tally.mismatches += 1;
            problems.push("`mine` is not the acknowledged values in order".into());
        }
        if data["ticks"] != ticks {
            self.tally.mismatches += 1;
            problems.push(format!(
                "ticks {} on the server, {ticks} issued",
                data["ticks"]
            ));
        }
        if answer["version"] != self.version || *data != self.state {
            self.tally.mismatches += 1;
            problems.push(format!(
                "the mirror (version {}) differs from the server's state (version {})",
                self.version, answer["version"]
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Leaves: even clients close (their session ends at once), odd ones drop their socket
    /// (their session waits out the resume TTL).
    async fn leave(&mut self) {
        let Some(mut socket) = self.socket.take() else {
            return;
        };
        if self.plan.index.is_multiple_of(2) {
            let _ = socket.close(None).await;
            // Read up to the server's close, so that it has seen ours.
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while client::next_text_unbounded(&mut socket).await.is_ok() {}
            })
            .await;
        }
    }
}

/// Sleeps until `at` (forever when `None`; the caller guards the branch).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
