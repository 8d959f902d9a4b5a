//! Stores for the transport tests (`tests/transport.rs`): what happens to an instance is
//! recorded under the `token` of its join params, so tests running in parallel never read each
//! other's records.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde::{Serialize, Serializer};
use storex::{Params, Store};

/// What happened to instances, by the token their join params carried: `init 0`,
/// `started set_then_hang 5`, `terminate 0`...
static EVENTS: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());

fn events_lock() -> MutexGuard<'static, BTreeMap<String, Vec<String>>> {
    EVENTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records `event` under the token of `params` (nothing without a token).
pub fn record(params: &Params, event: impl Into<String>) {
    if let Some(token) = params.get::<String>("token") {
        events_lock().entry(token).or_default().push(event.into());
    }
}

/// Everything recorded under `token`, in order.
pub fn events(token: &str) -> Vec<String> {
    events_lock().get(token).cloned().unwrap_or_default()
}

/// A counter whose init, mutations and terminate are observable, with async mutations that
/// change the state and then never finish.
#[derive(Store, Serialize, Clone)]
#[store(name = "Transport.Lifecycle")]
pub struct Lifecycle {
    pub value: i64,
}

#[storex::mutations]
impl Lifecycle {
    #[init]
    fn init(params: &Params) -> Result<Self, String> {
        if params.get::<bool>("refuse") == Some(true) {
            return Err("Refused by init.".into());
        }
        let value = params.get("start").unwrap_or(0);
        record(params, format!("init {value}"));
        Ok(Lifecycle { value })
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.value += 1;
    }

    #[mutation("set")]
    fn set(&mut self, value: i64) {
        self.value = value;
    }

    /// Changes the state, then hangs: only the time limit, a close or a drop ends it.
    #[mutation("set_then_hang")]
    async fn set_then_hang(&mut self, params: &Params, value: i64) {
        self.value = value;
        record(params, format!("started set_then_hang {value}"));
        std::future::pending::<()>().await;
    }

    #[terminate]
    fn terminate(&mut self, params: &Params) {
        record(params, format!("terminate {}", self.value));
    }
}

/// A value whose `Serialize` panics once it is lit (serialized as `false` before).
#[derive(Clone, PartialEq)]
pub struct Fuse(pub bool);

impl Serialize for Fuse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 {
            panic!("a lit fuse cannot be serialized (expected by the test)");
        }
        serializer.serialize_bool(false)
    }
}

/// A store whose state stops serializing when its fuse is lit.
#[derive(Store, Serialize, Clone)]
#[store(name = "Transport.Fragile")]
pub struct Fragile {
    pub value: i64,
    #[storex(replace)]
    pub fuse: Fuse,
}

#[storex::mutations]
impl Fragile {
    #[init]
    fn init(params: &Params) -> Self {
        Fragile {
            value: 0,
            fuse: Fuse(params.get::<bool>("lit") == Some(true)),
        }
    }

    #[mutation("increase")]
    fn increase(&mut self) {
        self.value += 1;
    }

    /// Changes the value and lights the fuse: the diff cannot be serialized.
    #[mutation("light")]
    fn light(&mut self) {
        self.value += 100;
        self.fuse = Fuse(true);
    }

    #[terminate]
    fn terminate(&mut self, params: &Params) {
        record(params, format!("terminate {}", self.value));
    }
}

/// A value whose `Drop` panics once it is armed: dropping it is a panic outside every guard of
/// the core when the core drops it outside one.
#[derive(Clone, PartialEq, Serialize)]
pub struct Mine {
    pub armed: bool,
}

impl Drop for Mine {
    fn drop(&mut self) {
        // Never while unwinding already: that would abort the test binary.
        if self.armed && !std::thread::panicking() {
            panic!("an armed mine was dropped (expected by the test)");
        }
    }
}

/// A store whose live state, once armed, panics when it is dropped.
#[derive(Store, Serialize, Clone)]
#[store(name = "Transport.Minefield")]
pub struct Minefield {
    pub value: i64,
    #[storex(replace)]
    pub mine: Mine,
}

#[storex::mutations]
impl Minefield {
    #[init]
    fn init() -> Self {
        Minefield {
            value: 0,
            mine: Mine { armed: false },
        }
    }

    /// Arms the mine of the live state, then hangs until the time limit rolls the state back
    /// (which drops the armed mine).
    #[mutation("arm_then_hang")]
    async fn arm_then_hang(&mut self, params: &Params) {
        self.value = 1;
        self.mine.armed = true;
        record(params, "armed");
        std::future::pending::<()>().await;
    }

    #[terminate]
    fn terminate(&mut self, params: &Params) {
        record(
            params,
            format!("terminate {} armed={}", self.value, self.mine.armed),
        );
    }
}

/// A store whose terminate is async and never finishes on its own.
#[derive(Store, Serialize, Clone)]
#[store(name = "Transport.SlowGoodbye")]
pub struct SlowGoodbye {
    pub value: i64,
}

#[storex::mutations]
impl SlowGoodbye {
    #[init]
    fn init() -> Self {
        SlowGoodbye { value: 0 }
    }

    #[terminate]
    async fn terminate(&mut self, params: &Params) {
        record(params, "slow terminate started");
        std::future::pending::<()>().await;
    }
}

/// A store whose async init never finishes on its own.
#[derive(Store, Serialize, Clone)]
#[store(name = "Transport.SlowHello")]
pub struct SlowHello {
    pub value: i64,
}

#[storex::mutations]
impl SlowHello {
    #[init]
    async fn init(params: &Params) -> Self {
        record(params, "slow init started");
        std::future::pending::<()>().await;
        SlowHello { value: 0 }
    }
}
