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

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

pub use ts_rs;
use ts_rs::{Config, Dummy, TypeVisitor, TS};

use crate::store::{Reply, Store};
use crate::tracked::{List, Map};

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
    for (_, export) in &types.exports {
        export(config).map_err(|source| ExportError::Types {
            store: S::NAME,
            source,
        })?;
    }
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

/// What a store's hidden list of mutation types is written into: the mutations' names, the
/// TypeScript of their arguments and replies, what to import and what to export.
#[doc(hidden)]
pub struct Description<'a> {
    config: &'a Config,
    state: String,
    mutations: Vec<MutationType>,
    /// TypeScript name → file (relative to the output directory).
    imports: BTreeMap<String, PathBuf>,
    /// How to write each type met, once each, in the order they were met.
    exports: Vec<(TypeId, TypeExport)>,
}

type TypeExport = fn(&Config) -> Result<(), ts_rs::ExportError>;

#[derive(Debug)]
struct MutationType {
    name: &'static str,
    args: Vec<(&'static str, String)>,
    reply: String,
}

/// Called by the hidden list for each mutation, before its arguments and its result.
#[doc(hidden)]
pub trait DescribeMutation {
    /// The next mutation is `name`.
    fn mutation(&mut self, name: &'static str);
}

/// Called by the hidden list for each data argument of a mutation, in order.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{T}` has no TypeScript type: the store is marked `#[store(ts)]`",
    label = "a mutation argument of a store whose types are exported",
    note = "add `#[derive(ts_rs::TS)]` to the type, or remove `ts` from the store's #[store(...)]"
)]
pub trait DescribeArg<T: ?Sized> {
    /// The current mutation's next argument is a `T` named `label`.
    fn arg(&mut self, label: &'static str);
}

/// Called by the hidden list with each mutation's result type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{R}` has no TypeScript type: the store is marked `#[store(ts)]`",
    label = "what a mutation of a store whose types are exported returns",
    note = "the reply's type needs `#[derive(ts_rs::TS)]`, or remove `ts` from the store's #[store(...)]"
)]
pub trait DescribeReply<R: ?Sized> {
    /// The current mutation returns an `R`.
    fn reply(&mut self);
}

impl fmt::Debug for Description<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Description")
            .field("state", &self.state)
            .field("mutations", &self.mutations)
            .field("imports", &self.imports)
            .finish_non_exhaustive()
    }
}

impl<'a> Description<'a> {
    fn of<S: TypedStore>(config: &'a Config) -> Self {
        let mut description = Description {
            config,
            state: String::new(),
            mutations: Vec::new(),
            imports: BTreeMap::new(),
            exports: Vec::new(),
        };
        description.state = description.use_type::<S>();
        S::describe(&mut description);
        description
    }

    /// The TypeScript of `T` where it is used, recording its imports and its exports.
    fn use_type<T: TS + ?Sized + 'static>(&mut self) -> String {
        let config = self.config;
        // A declared type is imported by its name; any other (an array, an option, a tuple)
        // names the declared types it holds.
        match T::output_path() {
            Some(path) => {
                self.imports.insert(T::ident(config), path);
            }
            None => {
                for dependency in T::dependencies(config) {
                    self.imports
                        .insert(dependency.ts_name, dependency.output_path);
                }
            }
        }
        let id = TypeId::of::<T>();
        if !self.exports.iter().any(|(known, _)| *known == id) {
            self.exports.push((id, export_type::<T>));
        }
        T::name(config)
    }

    fn render<S: TypedStore>(&self, config: &Config) -> String {
        let store = json_string(S::NAME);
        let type_name = store_type_name::<S>(config);
        let mut text = format!(
            "// Written by storex::ts from the store {store}: export the types again after changing it.\n"
        );
        if !self.imports.is_empty() {
            text.push('\n');
        }
        let extension = config
            .import_extension()
            .map(|extension| format!(".{extension}"))
            .unwrap_or_default();
        for (name, path) in &self.imports {
            let module = path.with_extension("");
            let module = module.to_string_lossy().replace('\\', "/");
            let _ = writeln!(
                text,
                "import type {{ {name} }} from {};",
                json_string(&format!("./{module}{extension}"))
            );
        }
        let _ = write!(
            text,
            "\n/** The store {store}: `useStorex<{type_name}>({{ store: {store} }})`. */\n\
             export type {type_name} = {{\n  __storex: {{\n    name: {store};\n    state: {};\n    mutations: {{\n",
            self.state
        );
        for mutation in &self.mutations {
            let args: Vec<String> = mutation
                .args
                .iter()
                .map(|(label, ty)| format!("{}: {ty}", tuple_label(label)))
                .collect();
            let _ = writeln!(
                text,
                "      {}: {{ args: [{}]; reply: {} }};",
                json_string(mutation.name),
                args.join(", "),
                mutation.reply
            );
        }
        text.push_str("    };\n  };\n};\n");
        text
    }

    fn current(&mut self) -> Option<&mut MutationType> {
        self.mutations.last_mut()
    }
}

/// An argument's name as the label of a tuple element: TypeScript refuses its reserved words
/// there (`for`, `class`...), which Rust allows as raw identifiers; they get a `_`.
fn tuple_label(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "null",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
    ];
    if RESERVED.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// `value` as a JSON (and so TypeScript) string literal.
fn json_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// Writes `T`'s file and its dependencies', or only its dependencies' when `T` has no file of
/// its own (a primitive, a `Vec`, a tuple).
fn export_type<T: TS + ?Sized + 'static>(config: &Config) -> Result<(), ts_rs::ExportError> {
    if T::output_path().is_some() {
        return T::export_all(config);
    }
    struct Dependencies<'a> {
        config: &'a Config,
        result: Result<(), ts_rs::ExportError>,
    }
    impl TypeVisitor for Dependencies<'_> {
        fn visit<U: TS + 'static + ?Sized>(&mut self) {
            if self.result.is_ok() && U::output_path().is_some() {
                self.result = U::export_all(self.config);
            }
        }
    }
    let mut dependencies = Dependencies {
        config,
        result: Ok(()),
    };
    T::visit_dependencies(&mut dependencies);
    dependencies.result
}

impl DescribeMutation for Description<'_> {
    fn mutation(&mut self, name: &'static str) {
        self.mutations.push(MutationType {
            name,
            args: Vec::new(),
            reply: "undefined".to_owned(),
        });
    }
}

impl<T: TS + ?Sized + 'static> DescribeArg<T> for Description<'_> {
    fn arg(&mut self, label: &'static str) {
        let ty = self.use_type::<T>();
        if let Some(mutation) = self.current() {
            mutation.args.push((label, ty));
        }
    }
}

/// `()`: no reply, so the commit's promise resolves with `undefined`.
impl DescribeReply<()> for Description<'_> {
    fn reply(&mut self) {}
}

impl<T: TS + 'static> DescribeReply<Reply<T>> for Description<'_> {
    fn reply(&mut self) {
        let ty = self.use_type::<T>();
        if let Some(mutation) = self.current() {
            mutation.reply = ty;
        }
    }
}

/// A `Result`'s error is the commit's rejection, so only its success is typed.
impl<'a, T, E> DescribeReply<Result<T, E>> for Description<'a>
where
    Description<'a>: DescribeReply<T>,
{
    fn reply(&mut self) {
        <Description<'a> as DescribeReply<T>>::reply(self);
    }
}

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
