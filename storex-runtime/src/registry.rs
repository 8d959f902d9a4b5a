//! The registry: every store of the program by name, collected from `#[derive(Store)]` with `inventory`.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use std::time::Duration;

use crate::instance::{self, JoinError, LiveStore};
use crate::store::{BoxFuture, DurableState, MutationInfo, Mutations, Params, Session};

/// A registered store: its name and how to create an instance. `#[derive(Store)]` submits one
/// per store type.
pub struct StoreEntry {
    name: &'static str,
    type_name: fn() -> &'static str,
    mutations: &'static [MutationInfo],
    join: JoinFn,
    restore: Option<RestoreFn>,
}

/// Creates a live instance of one store type.
type JoinFn = fn(
    Session,
    Params,
    Option<Duration>,
) -> BoxFuture<'static, Result<Box<dyn LiveStore>, JoinError>>;

/// Makes an instance again from its saved state (stores marked `#[store(durable)]`).
pub(crate) type RestoreFn = fn(
    Session,
    Params,
    Option<String>,
    serde_json::Value,
    Option<Duration>,
) -> Result<Box<dyn LiveStore>, String>;

inventory::collect!(StoreEntry);

impl fmt::Debug for StoreEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreEntry")
            .field("name", &self.name)
            .field("type_name", &self.type_name())
            .finish_non_exhaustive()
    }
}

impl StoreEntry {
    /// The entry of store type `S`.
    pub const fn of<S: Mutations>() -> Self {
        Self {
            name: S::NAME,
            type_name: std::any::type_name::<S>,
            mutations: S::MUTATIONS,
            join: instance::join::<S>,
            restore: None,
        }
    }

    /// The entry of a durable store (`#[store(durable)]`): its instances can be made again from
    /// their saved state on another node.
    pub const fn durable<S: Mutations + DurableState>(self) -> Self {
        Self {
            restore: Some(instance::restore::<S>),
            ..self
        }
    }

    /// Whether the store's instances are saved in durable sessions (`#[store(durable)]`).
    pub fn is_durable(&self) -> bool {
        self.restore.is_some()
    }

    /// An instance made again from `state`, for a durable session taken over; `None` when the
    /// store is not durable.
    pub(crate) fn restore(
        &self,
        session: Session,
        params: Params,
        key: Option<String>,
        state: serde_json::Value,
        time_limit: Duration,
    ) -> Option<Result<Box<dyn LiveStore>, String>> {
        self.restore
            .map(|restore| restore(session, params, key, state, Some(time_limit)))
    }

    /// The name clients join by.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Rust type's path, for messages.
    pub fn type_name(&self) -> &'static str {
        (self.type_name)()
    }

    /// The store's mutations, in declaration order.
    pub fn mutations(&self) -> &'static [MutationInfo] {
        self.mutations
    }

    /// The mutation called `name`, if the store has one.
    pub fn mutation(&self, name: &str) -> Option<&'static MutationInfo> {
        self.mutations.iter().find(|info| info.name == name)
    }

    /// Runs the store's init for `session` with `params`: a live instance, or why not. Nothing
    /// it runs has a time limit (a server applies [`Config::time_limit`](crate::Config::time_limit)),
    /// so any executor can drive it.
    pub fn join(
        &self,
        session: Session,
        params: Params,
    ) -> BoxFuture<'static, Result<Box<dyn LiveStore>, JoinError>> {
        (self.join)(session, params, None)
    }

    /// [`join`](Self::join) with another time limit.
    pub(crate) fn join_within(
        &self,
        session: Session,
        params: Params,
        time_limit: Duration,
    ) -> BoxFuture<'static, Result<Box<dyn LiveStore>, JoinError>> {
        (self.join)(session, params, Some(time_limit))
    }
}

/// Why the registry cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two store types chose the same name.
    #[error(
        "two stores are registered under the name {name:?}: `{first}` and `{second}`; \
         give one of them another name with #[store(name = \"...\")]"
    )]
    DuplicateName {
        /// The name both chose.
        name: &'static str,
        /// One type.
        first: &'static str,
        /// The other type.
        second: &'static str,
    },
}

/// Every store of the program by name.
///
/// ```
/// # use storex::Store;
/// # #[derive(Store, serde::Serialize, Clone)]
/// # #[store(name = "Docs.Registry.Counter")]
/// # pub struct Counter { counter: i64 }
/// # #[storex::mutations]
/// # impl Counter { #[init] fn init() -> Self { Counter { counter: 0 } } }
/// let registry = storex::Registry::global().unwrap();
/// let entry = registry.get("Docs.Registry.Counter").unwrap();
/// assert!(entry.type_name().ends_with("Counter"));
/// ```
#[derive(Debug)]
pub struct Registry {
    by_name: HashMap<&'static str, &'static StoreEntry>,
}

impl Registry {
    /// Builds a registry of `entries`, refusing two entries of one name.
    pub fn new(
        entries: impl IntoIterator<Item = &'static StoreEntry>,
    ) -> Result<Self, RegistryError> {
        let mut by_name: HashMap<&'static str, &'static StoreEntry> = HashMap::new();
        for entry in entries {
            if let Some(existing) = by_name.insert(entry.name, entry) {
                let (mut first, mut second) = (existing.type_name(), entry.type_name());
                if first > second {
                    std::mem::swap(&mut first, &mut second);
                }
                return Err(RegistryError::DuplicateName {
                    name: entry.name,
                    first,
                    second,
                });
            }
        }
        Ok(Self { by_name })
    }

    /// Every store that `#[derive(Store)]` registered in this program, built once.
    pub fn global() -> Result<&'static Registry, RegistryError> {
        static GLOBAL: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Registry::new(inventory::iter::<StoreEntry>))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The store named `name`.
    pub fn get(&self, name: &str) -> Option<&'static StoreEntry> {
        self.by_name.get(name).copied()
    }

    /// Every store name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.by_name.keys().copied().collect();
        names.sort_unstable();
        names
    }
}
