//! The stores the WebSocket tests join.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use storex::{Init, Params, Reply, Session, Store};

/// How many times Counter's init ran, by session id (each test has its own sessions, so tests
/// running in parallel do not see each other's inits).
static COUNTER_INITS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// How many times Counter's init ran in session `session`.
pub fn counter_inits(session: &str) -> usize {
    let inits = COUNTER_INITS.lock().unwrap_or_else(|e| e.into_inner());
    inits.get(session).copied().unwrap_or(0)
}
/// The sessions whose Counter instance terminated.
pub static TERMINATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn terminated(session: &str) -> bool {
    TERMINATED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|s| s == session)
}

/// The diff that sets Counter's `counter` to `value`.
pub fn counter_diff(value: i64) -> Value {
    json!([{"a": "u", "p": ["counter"], "t": value}])
}

#[derive(Store, Serialize, Clone)]
#[store(name = "Test.Counter")]
pub struct Counter {
    pub counter: i64,
    pub blob: String,
}

#[storex::mutations]
impl Counter {
    #[init]
    fn init(session: &Session, params: &Params) -> Result<Init<Self>, String> {
        if params.get::<bool>("refuse") == Some(true) {
            return Err("Unauthorized".into());
        }
        *COUNTER_INITS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(session.id().to_owned())
            .or_default() += 1;
        let counter = Counter {
            counter: params.get("start").unwrap_or(0),
            blob: String::new(),
        };
        Ok(match params.get::<String>("key") {
            Some(key) => Init::with_key(counter, key),
            None => Init::new(counter),
        })
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.counter += 1;
    }

    #[mutation("decrease")]
    fn decrease(&mut self) -> Reply<&'static str> {
        self.counter -= 1;
        Reply("message")
    }

    #[mutation("set")]
    fn set(&mut self, number: i64) -> Result<(), String> {
        if number < 0 {
            return Err(format!("{number} is below zero"));
        }
        self.counter = number;
        Ok(())
    }

    #[mutation("slow_set")]
    async fn slow_set(&mut self, number: i64) -> Reply<i64> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.counter = number;
        Reply(number)
    }

    #[mutation("sleep_set")]
    async fn sleep_set(&mut self, millis: u64, number: i64) -> Reply<i64> {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.counter = number;
        Reply(number)
    }

    #[mutation("panic")]
    fn panic(&mut self) {
        self.counter = 1_000_000;
        panic!("a mutation that panics (expected by the test)");
    }

    #[mutation("blob")]
    fn blob(&mut self, size: usize) {
        self.blob = "x".repeat(size);
    }

    #[terminate]
    fn terminate(&mut self, session: &Session) {
        TERMINATED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session.id().to_owned());
    }
}

/// Who the connect hook said the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub String);

#[derive(Store, Serialize, Clone)]
#[store(name = "Test.Whoami")]
pub struct Whoami {
    pub user: String,
}

#[storex::mutations]
impl Whoami {
    #[init]
    fn init(session: &Session) -> Result<Self, String> {
        match session.get::<User>() {
            Some(User(user)) => Ok(Whoami { user: user.clone() }),
            None => Err("Unauthorized".into()),
        }
    }
}

#[derive(Store, Serialize, Clone)]
#[store(name = "Test.PanicInit")]
pub struct PanicInit {
    pub never: bool,
}

#[storex::mutations]
impl PanicInit {
    #[init]
    fn init() -> Self {
        panic!("an init that panics (expected by the test)")
    }
}

#[derive(Store, Serialize, Clone)]
#[store(name = "Test.Other")]
pub struct Other {
    pub value: u32,
}

#[storex::mutations]
impl Other {
    #[init]
    async fn init() -> Self {
        Other { value: 7 }
    }

    #[mutation("set")]
    fn set(&mut self, value: u32) {
        self.value = value;
    }
}
