//! Durable sessions in Redis: one hash per session (`<prefix>:session:<id>`), written by Lua
//! scripts that check the session's lease, so that a node that lost the session cannot write
//! it any more. Writes from every session of the node are batched: what is queued while one
//! batch is on its way goes in the next pipeline.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};
use tokio::sync::{mpsc, oneshot};

use super::{lock, Backoff, RedisOptions, Thread};
use crate::durable::{Saved, SessionStore, SessionStoreError, Taken, Write};
use crate::store::BoxFuture;

/// The most jobs sent in one pipeline.
const BATCH: usize = 512;

/// How often an idle connection is pinged, so that a dead one is found before a save needs it.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Applies a write when the lease matches. KEYS: the session. ARGV: lease, create (1/0), TTL in
/// ms, the number of fields set, then field/value pairs, then the fields deleted. Returns 1
/// (stored), 0 (fenced: another lease) or 2 (missing).
const SAVE: &str = r"
local lease = redis.call('HGET', KEYS[1], 'lease')
if lease == false then
  if ARGV[2] ~= '1' then return 2 end
  redis.call('HSET', KEYS[1], 'lease', ARGV[1])
elseif lease ~= ARGV[1] then
  return 0
end
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  i = i + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Takes a session over. KEYS: the session. ARGV: TTL in ms. Returns nil, or the new lease and
/// the fields (without the lease).
const TAKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local lease = redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #fields, 2 do
  if fields[i] ~= 'lease' then
    out[#out + 1] = fields[i]
    out[#out + 1] = fields[i + 1]
  end
end
return {lease, out}
";

/// Deletes a session when its lease matches. KEYS: the session. ARGV: lease. Returns 1 or 0.
const FORGET: &str = r"
if redis.call('HGET', KEYS[1], 'lease') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// Extends the life of records. KEYS: the sessions. ARGV: their TTLs in ms.
const EXTEND: &str = "for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[i]) end return 1";

/// Durable sessions kept in Redis (see [`durable`](crate::durable)): pass it to
/// [`Config::durable`](crate::Config::durable). Made by
/// [`RedisBackplane::sessions`](super::RedisBackplane::sessions): it shares the backplane's thread
/// and server, with a connection of its own. Cheap to clone.
#[derive(Clone)]
pub struct RedisSessions {
    shared: Arc<Shared>,
}

struct Shared {
    /// Keeps the backplane's thread, which runs the writer, alive.
    _thread: Arc<Thread>,
    prefix: String,
    server: String,
    queue: mpsc::Sender<Job>,
    /// The sessions that live in this process, with their TTL and when to extend it next.
    live: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions")
            .field("server", &self.shared.server)
            .field("prefix", &self.shared.prefix)
            .finish()
    }
}

type Reply<T> = oneshot::Sender<Result<T, SessionStoreError>>;

enum Job {
    Save(Write, Reply<Saved>),
    Take(String, Duration, Reply<Option<Taken>>),
    Forget(String, u64, Reply<bool>),
    /// Extends the life of these sessions' records (no answer).
    Extend(Vec<(String, Duration)>),
}

impl Job {
    fn fail(self, why: &SessionStoreError) {
        match self {
            Job::Save(_, reply) => drop(reply.send(Err(why.clone()))),
            Job::Take(_, _, reply) => drop(reply.send(Err(why.clone()))),
            Job::Forget(_, _, reply) => drop(reply.send(Err(why.clone()))),
            Job::Extend(_) => {}
        }
    }
}

/// The scripts' hashes on the connected server.
struct Scripts {
    save: String,
    take: String,
    forget: String,
}

impl RedisSessions {
    pub(super) fn start(
        options: &RedisOptions,
        client: redis::Client,
        server: String,
        runtime: &tokio::runtime::Handle,
        thread: Arc<Thread>,
    ) -> Self {
        let (queue, jobs) = mpsc::channel(options.queue_capacity.max(BATCH));
        let shared = Arc::new(Shared {
            _thread: thread,
            prefix: options.prefix.clone(),
            server,
            queue,
            live: Mutex::default(),
        });
        runtime.spawn(writer(
            options.clone(),
            client,
            shared.server.clone(),
            shared.prefix.clone(),
            jobs,
        ));
        runtime.spawn(extender(Arc::downgrade(&shared)));
        Self { shared }
    }

    fn ask<T: Send + 'static>(
        &self,
        job: impl FnOnce(Reply<T>) -> Job,
    ) -> BoxFuture<'static, Result<T, SessionStoreError>> {
        let (reply, answer) = oneshot::channel();
        let queued = self.shared.queue.try_send(job(reply));
        let server = self.shared.server.clone();
        Box::pin(async move {
            if let Err(error) = queued {
                let why = match error {
                    mpsc::error::TrySendError::Full(_) => "its queue is full",
                    mpsc::error::TrySendError::Closed(_) => "it has stopped",
                };
                return Err(SessionStoreError(format!(
                    "the durable sessions in Redis at {server} cannot take more now: {why}"
                )));
            }
            answer.await.unwrap_or_else(|_| {
                Err(SessionStoreError(
                    "the Redis backplane stopped before Redis answered".into(),
                ))
            })
        })
    }
}

impl SessionStore for RedisSessions {
    fn save(&self, write: Write) -> BoxFuture<'static, Result<Saved, SessionStoreError>> {
        self.ask(|reply| Job::Save(write, reply))
    }

    fn take(
        &self,
        session: &str,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Taken>, SessionStoreError>> {
        let session = session.to_owned();
        self.ask(|reply| Job::Take(session, ttl, reply))
    }

    fn forget(
        &self,
        session: &str,
        lease: u64,
    ) -> BoxFuture<'static, Result<bool, SessionStoreError>> {
        let session = session.to_owned();
        self.ask(|reply| Job::Forget(session, lease, reply))
    }

    fn live(&self, session: &str, ttl: Option<Duration>) {
        let mut live = lock(&self.shared.live);
        match ttl {
            Some(ttl) => {
                live.insert(session.to_owned(), (ttl, Instant::now() + ttl / 3));
            }
            None => {
                live.remove(session);
            }
        }
    }
}

/// Every second, extends the records of the live sessions whose third of a TTL has passed
/// (a session that changes nothing must not expire while its node lives).
async fn extender(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<(String, Duration)> = {
            let mut live = lock(&shared.live);
            live.iter_mut()
                .filter(|(_, (_, next))| *next <= now)
                .map(|(id, (ttl, next))| {
                    *next = now + *ttl / 3;
                    (id.clone(), *ttl)
                })
                .collect()
        };
        if !due.is_empty() {
            // Best effort: a full queue skips a round, the next one extends them.
            let _ = shared.queue.try_send(Job::Extend(due));
        }
    }
}

fn key(prefix: &str, session: &str) -> String {
    format!("{prefix}:session:{session}")
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Connects and loads the scripts.
async fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> Result<(MultiplexedConnection, Scripts), String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|error| error.to_string())?;
    let load = |source: &'static str| {
        let mut connection = connection.clone();
        async move {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(source)
                .query_async::<String>(&mut connection)
                .await
                .map_err(|error| error.to_string())
        }
    };
    let scripts = Scripts {
        save: load(SAVE).await?,
        take: load(TAKE).await?,
        forget: load(FORGET).await?,
    };
    let _: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(|error| error.to_string())?;
    Ok((connection, scripts))
}

/// The writing task: batches the jobs queued meanwhile into one pipeline per round trip.
async fn writer(
    options: RedisOptions,
    client: redis::Client,
    server: String,
    prefix: String,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut backoff = Backoff::new(&options);
    let mut batch: Vec<Job> = Vec::with_capacity(BATCH);
    let mut link: Option<(MultiplexedConnection, Scripts)> = None;
    loop {
        if link.is_none() {
            match connect(&client, options.command_timeout).await {
                Ok(connected) => {
                    backoff.reset();
                    link = Some(connected);
                }
                Err(error) => {
                    let why =
                        SessionStoreError(format!("Redis at {server} is unreachable: {error}"));
                    tracing::debug!(%why, "durable sessions: still unreachable");
                    // What waits fails now rather than after the reconnection.
                    while let Ok(job) = jobs.try_recv() {
                        job.fail(&why);
                    }
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            }
        }
        let Some((connection, scripts)) = link.as_mut() else {
            continue;
        };
        let first = tokio::select! {
            first = jobs.recv() => first,
            () = tokio::time::sleep(PING_EVERY) => {
                // Idle: a dead connection is found now, not by the next save.
                let pong: Result<redis::Value, _> = redis::cmd("PING").query_async(connection).await;
                if pong.is_err() {
                    link = None;
                }
                continue;
            }
        };
        let Some(first) = first else {
            return; // the backplane is gone
        };
        batch.push(first);
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut outcome = run(&mut batch, connection, scripts, &prefix).await;
        if let Err(error) = &outcome {
            // Once more on a new connection: every job can run twice (a save under the same
            // lease writes the same fields, a takeover raises the lease once more, a delete
            // finds nothing), so a connection that broke between two batches costs no error.
            tracing::info!(server = %server, %error, "durable sessions: reconnecting to Redis");
            link = connect(&client, options.command_timeout).await.ok();
            if let Some((connection, scripts)) = link.as_mut() {
                outcome = run(&mut batch, connection, scripts, &prefix).await;
            }
        }
        if let Err(error) = outcome {
            let why = SessionStoreError(format!(
                "Redis at {server} failed while saving sessions: {error}"
            ));
            tracing::warn!(%why, "durable sessions: reconnecting");
            for job in batch.drain(..) {
                job.fail(&why);
            }
            link = None;
            tokio::time::sleep(backoff.next()).await;
        }
    }
}

/// Sends `batch` as one pipeline and answers each job; on an error the jobs stay in `batch`.
async fn run(
    batch: &mut Vec<Job>,
    connection: &mut MultiplexedConnection,
    scripts: &Scripts,
    prefix: &str,
) -> Result<(), String> {
    let mut pipe = redis::pipe();
    for job in batch.iter() {
        add(&mut pipe, job, scripts, prefix);
    }
    let values = pipe
        .query_async::<Vec<redis::Value>>(connection)
        .await
        .map_err(|error| error.to_string())?;
    for (job, value) in batch.drain(..).zip(values) {
        answer(job, value);
    }
    Ok(())
}

/// The commands of one job.
fn add(pipe: &mut redis::Pipeline, job: &Job, scripts: &Scripts, prefix: &str) {
    match job {
        Job::Save(write, _) => {
            let command = pipe
                .cmd("EVALSHA")
                .arg(&scripts.save)
                .arg(1)
                .arg(key(prefix, &write.session))
                .arg(write.lease)
                .arg(if write.create { "1" } else { "0" })
                .arg(millis(write.ttl))
                .arg(write.set.len());
            for (field, value) in &write.set {
                command.arg(field).arg(value);
            }
            for field in &write.delete {
                command.arg(field);
            }
        }
        Job::Take(session, ttl, _) => {
            pipe.cmd("EVALSHA")
                .arg(&scripts.take)
                .arg(1)
                .arg(key(prefix, session))
                .arg(millis(*ttl));
        }
        Job::Forget(session, lease, _) => {
            pipe.cmd("EVALSHA")
                .arg(&scripts.forget)
                .arg(1)
                .arg(key(prefix, session))
                .arg(*lease);
        }
        Job::Extend(sessions) => {
            let command = pipe.cmd("EVAL").arg(EXTEND).arg(sessions.len());
            for (session, _) in sessions {
                command.arg(key(prefix, session));
            }
            for (_, ttl) in sessions {
                command.arg(millis(*ttl));
            }
        }
    }
}

/// Hands Redis's answer to whoever waits for it.
fn answer(job: Job, value: redis::Value) {
    let unreadable = |what: &str, error: &dyn fmt::Display| {
        SessionStoreError(format!(
            "Redis answered {what} with something else: {error}"
        ))
    };
    match job {
        Job::Save(_, reply) => {
            let saved = match i64::from_redis_value(value) {
                Ok(1) => Ok(Saved::Stored),
                Ok(0) => Ok(Saved::Fenced),
                Ok(2) => Ok(Saved::Missing),
                Ok(other) => Err(unreadable("a save", &other)),
                Err(error) => Err(unreadable("a save", &error)),
            };
            let _ = reply.send(saved);
        }
        Job::Take(_, _, reply) => {
            let taken = <Option<(u64, HashMap<String, String>)>>::from_redis_value(value)
                .map(|taken| taken.map(|(lease, fields)| Taken::new(lease, fields)))
                .map_err(|error| unreadable("a takeover", &error));
            let _ = reply.send(taken);
        }
        Job::Forget(_, _, reply) => {
            let forgot = i64::from_redis_value(value)
                .map(|deleted| deleted == 1)
                .map_err(|error| unreadable("a delete", &error));
            let _ = reply.send(forgot);
        }
        Job::Extend(_) => {}
    }
}
