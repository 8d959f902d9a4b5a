//! TypeScript types of stores (cargo feature `ts`), made with [ts-rs](ts_rs): for each store
//! marked `#[store(ts)]`, its state type and a table from each mutation's name to its arguments
//! and its reply, which the browser client's typings (`storex.d.ts`) turn into a typed `state`
//! and a typed `commit`.
//!
//! A store opts in with `#[store(ts)]` and derives [`ts_rs::TS`] beside `Store`; so does every
//! type its state, its mutations' arguments and its replies are made of (with the feature off,
//! `#[store(ts)]` does nothing). Then [`export_all`] (in a test, a build step or a small binary)
//! writes one `<State>Store.ts` file per store and one file per type it uses:
//!
//! ```
//! use storex::Store;
//! use ts_rs::TS;
//!
//! #[derive(Store, TS, serde::Serialize, Clone)]
//! #[store(name = "ExampleApp.Store.Counter", ts)]
//! pub struct Counter {
//!     counter: i64,
//! }
//!
//! #[storex::mutations]
//! impl Counter {
//!     #[init]
//!     fn init() -> Self {
//!         Counter { counter: 0 }
//!     }
//!
//!     #[mutation("set")]
//!     fn set(&mut self, number: i64) -> Result<(), String> {
//!         self.counter = number;
//!         Ok(())
//!     }
//! }
//!
//! let text = storex::ts::declaration::<Counter>(&storex::ts::config("bindings"));
//! assert!(text.contains(r#"name: "ExampleApp.Store.Counter";"#));
//! assert!(text.contains(r#""set": { args: [number: number]; reply: undefined };"#));
//!
//! let dir = std::env::temp_dir().join(format!("storex-ts-doc-{}", std::process::id()));
//! let written = storex::ts::export::<Counter>(&storex::ts::config(&dir)).unwrap();
//! assert_eq!(written, dir.join("CounterStore.ts"));
//! assert!(dir.join("Counter.ts").exists());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! The page then names the store's type: `useStorex<CounterStore>({ store:
//! 'ExampleApp.Store.Counter' })` has a typed `state`, and `store.commit('set', 10)` is checked
//! by `tsc`: a misspelt name or a wrong argument is a type error.
//!
//! Integers of 64 bits and more are `number` in these files (what `JSON.parse` gives the
//! browser), not ts-rs's default `bigint`; imports end in `.js`, which TypeScript resolves to
//! the `.ts` file under every module resolution. The environment variables `TS_RS_LARGE_INT`
//! and `TS_RS_IMPORT_EXTENSION` override both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use ts_rs;
use ts_rs::{Config, Dummy, TypeVisitor, TS};

use crate::store::Store;
use crate::tracked::{List, Map};

mod describe;

#[doc(hidden)]
pub use describe::{DescribeArg, DescribeMutation, DescribeReply, Description};

/// A store whose TypeScript description can be exported: implemented by `#[derive(Store)]`
/// for stores marked `#[store(ts)]`.
#[diagnostic::on_unimplemented(
    message = "the store `{Self}` has no TypeScript description",
    label = "not marked `#[store(ts)]`",
    note = "add `ts` to the store's attribute, `#[store(ts)]`, and `#[derive(ts_rs::TS)]` to the store"
)]
pub trait TypedStore: Store + TS + 'static {
    /// Lists the store's mutations, with their argument and result types, into `out`.
    #[doc(hidden)]
    fn describe(out: &mut Description<'_>);
}

/// Why the types could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// ts-rs could not write a type of the store (or the store's own file could not be written).
    #[error("the TypeScript types of store {store} could not be written: {source}")]
    Types {
        /// The store's name.
        store: &'static str,
        /// ts-rs's error.
        #[source]
        source: ts_rs::ExportError,
    },
    /// A file could not be written.
    #[error("the TypeScript types of store {store} could not be written to {}: {source}", path.display())]
    Write {
        /// The store's name.
        store: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// Two stores would be written to one file: their state types have the same TypeScript name.
    #[error(
        "stores {first} and {second} would both be written to {}: their state types have the same \
         TypeScript name; give one of them another with #[ts(rename = \"...\")]",
        path.display()
    )]
    SameFile {
        /// The store written first.
        first: &'static str,
        /// The other store.
        second: &'static str,
        /// The file.
        path: PathBuf,
    },
}

/// The ts-rs configuration the exports use: files written under `dir`, 64-bit integers as
/// `number`, imports ending in `.js`; ts-rs's environment variables `TS_RS_LARGE_INT` and
/// `TS_RS_IMPORT_EXTENSION` override the last two.
///
/// ```
/// let config = storex::ts::config("pages/types");
/// assert_eq!(config.out_dir(), std::path::Path::new("pages/types"));
/// ```
pub fn config(dir: impl AsRef<Path>) -> Config {
    let mut config = Config::from_env().with_out_dir(dir.as_ref());
    if std::env::var_os("TS_RS_LARGE_INT").is_none() {
        config = config.with_large_int("number");
    }
    if std::env::var_os("TS_RS_IMPORT_EXTENSION").is_none() {
        config = config.with_import_extension(Some("js"));
    }
    config
}

/// Writes the types of every store marked `#[store(ts)]` in the program into `config`'s
/// directory ([`config`] makes one): a `<State>Store.ts` file per store, and one file per type
/// they use. Returns the stores' files, in the order of the stores' names.
///
/// Files of types that exist already are merged by ts-rs; a store's file is rewritten.
pub fn export_all(config: &Config) -> Result<Vec<PathBuf>, ExportError> {
    let mut entries: Vec<&TsEntry> = inventory::iter::<TsEntry>().collect();
    entries.sort_by_key(|entry| entry.name);
    let mut written: HashMap<PathBuf, &'static str> = HashMap::new();
    let mut files = Vec::new();
    for entry in entries {
        let path = (entry.file)(config);
        if let Some(first) = written.insert(path.clone(), entry.name) {
            return Err(ExportError::SameFile {
                first,
                second: entry.name,
                path,
            });
        }
        files.push((entry.export)(config)?);
    }
    Ok(files)
}

/// Writes the types of store `S` into `config`'s directory: its `<State>Store.ts` file (whose
/// path is returned) and the files of the types it uses.
pub fn export<S: TypedStore>(config: &Config) -> Result<PathBuf, ExportError> {
    let types = Description::of::<S>(config);
    types
        .export_types(config)
        .map_err(|source| ExportError::Types {
            store: S::NAME,
            source,
        })?;
    let path = store_file::<S>(config);
    let text = types.render::<S>(config);
    let written = match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).and_then(|()| std::fs::write(&path, text)),
        None => std::fs::write(&path, text),
    };
    written.map_err(|source| ExportError::Write {
        store: S::NAME,
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The text of store `S`'s `<State>Store.ts` file (what [`export`] writes, without the files of
/// the types it imports).
pub fn declaration<S: TypedStore>(config: &Config) -> String {
    Description::of::<S>(config).render::<S>(config)
}

/// Where [`export`] writes store `S`'s file.
fn store_file<S: TypedStore>(config: &Config) -> PathBuf {
    config
        .out_dir()
        .join(format!("{}.ts", store_type_name::<S>(config)))
}

/// The TypeScript name of store `S`'s type: its state type's name and `Store`.
fn store_type_name<S: TypedStore>(config: &Config) -> String {
    format!("{}Store", S::ident(config))
}

/// A store marked `#[store(ts)]`, registered for [`export_all`].
#[doc(hidden)]
#[derive(Debug)]
pub struct TsEntry {
    name: &'static str,
    file: fn(&Config) -> PathBuf,
    export: fn(&Config) -> Result<PathBuf, ExportError>,
}

impl TsEntry {
    /// The entry of store `S`.
    pub const fn of<S: TypedStore>() -> Self {
        TsEntry {
            name: S::NAME,
            file: store_file::<S>,
            export: export::<S>,
        }
    }
}

inventory::collect!(TsEntry);

/// A tracked list is an array in JSON.
impl<T: TS> TS for List<T> {
    type WithoutGenerics = List<Dummy>;
    type OptionInnerType = Self;

    fn ident(config: &Config) -> String {
        <Vec<T> as TS>::ident(config)
    }

    fn name(config: &Config) -> String {
        <Vec<T> as TS>::name(config)
    }

    fn inline(config: &Config) -> String {
        <Vec<T> as TS>::inline(config)
    }

    fn visit_dependencies(visitor: &mut impl TypeVisitor)
    where
        Self: 'static,
    {
        <Vec<T> as TS>::visit_dependencies(visitor);
    }

    fn visit_generics(visitor: &mut impl TypeVisitor)
    where
        Self: 'static,
    {
        <Vec<T> as TS>::visit_generics(visitor);
    }
}

/// A tracked map is an object in JSON.
impl<K: TS, V: TS> TS for Map<K, V> {
    type WithoutGenerics = Map<Dummy, Dummy>;
    type OptionInnerType = Self;

    fn name(config: &Config) -> String {
        <HashMap<K, V> as TS>::name(config)
    }

    fn inline(config: &Config) -> String {
        <HashMap<K, V> as TS>::inline(config)
    }

    fn visit_dependencies(visitor: &mut impl TypeVisitor)
    where
        Self: 'static,
    {
        <HashMap<K, V> as TS>::visit_dependencies(visitor);
    }

    fn visit_generics(visitor: &mut impl TypeVisitor)
    where
        Self: 'static,
    {
        <HashMap<K, V> as TS>::visit_generics(visitor);
    }
}
