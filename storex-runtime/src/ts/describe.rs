//! What a store's hidden list of mutation types is written into (`Description`), and the text
//! of its `<State>Store.ts` file.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::PathBuf;

use ts_rs::{Config, TypeVisitor, TS};

use super::{store_type_name, TypedStore};
use crate::store::Reply;

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
    pub(super) fn of<S: TypedStore>(config: &'a Config) -> Self {
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

    pub(super) fn render<S: TypedStore>(&self, config: &Config) -> String {
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

    /// Writes the file of every type met, with its dependencies'.
    pub(super) fn export_types(&self, config: &Config) -> Result<(), ts_rs::ExportError> {
        self.exports
            .iter()
            .try_for_each(|(_, export)| export(config))
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
