//! Every rule of the macros in one place; each violation is an error on the offending tokens,
//! and all of them are collected.

use quote::ToTokens;

use crate::ast::{Arg, Field, Impl, Input, Method, Receiver, Shape};
use crate::attr::Role;
use crate::ctxt::Ctxt;

/// Which derive the input is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    Store,
    Diff,
}

pub fn input(cx: &mut Ctxt, input: &Input<'_>, derive: Derive) {
    let original = input.original;
    if derive == Derive::Store {
        store_shape(cx, input);
        if !original.generics.params.is_empty() {
            cx.error_spanned_by(
                &original.generics,
                "a store cannot be generic: clients join it by one name, so it must be one concrete type",
            );
        }
    }
    if let Shape::Union(union_token) = input.shape {
        if derive == Derive::Diff {
            cx.error_spanned_by(
                union_token,
                "a union cannot be diffed: derive Diff on a struct or an enum",
            );
        }
    }
    for attr in &original.attrs {
        if attr.path().is_ident("storex") {
            cx.error_spanned_by(
                attr,
                "#[storex(...)] belongs on a field; on the struct itself use #[store(name = \"...\")]",
            );
        }
    }
    match &input.shape {
        Shape::Named(fields) => {
            for (key, span) in &input.serde.reshaping {
                cx.syn_error(syn::Error::new(
                    *span,
                    format!(
                        "#[serde({key})] changes the JSON shape of `{}`, so its field-by-field diff would not match what serde sends; \
                         remove it, or implement `storex::Diff` by hand",
                        input.ident
                    ),
                ));
            }
            for field in fields {
                store_on_field(cx, field);
                for (key, span) in &field.serde.reshaping {
                    cx.syn_error(syn::Error::new(*span, reshaping_field_message(key)));
                }
            }
        }
        Shape::Newtype(field) => newtype(cx, input, field),
        Shape::Whole | Shape::Union(_) => {}
    }
}

fn store_on_field(cx: &mut Ctxt, field: &Field<'_>) {
    for attr in &field.original.attrs {
        if attr.path().is_ident("store") {
            cx.error_spanned_by(
                attr,
                "#[store(...)] belongs on the struct; on a field use #[storex(...)]",
            );
        }
    }
}

/// A newtype's diff is its field's, at the same path: serde must write the newtype as its
/// field's own `Serialize` does. serde itself refuses `tag`, `untagged` and `flatten` here, and
/// writes a newtype as its field whether or not the field is skipped, so what is left to check
/// is what makes serde write something else.
fn newtype(cx: &mut Ctxt, input: &Input<'_>, field: &Field<'_>) {
    let ident = input.ident;
    for (key, span) in &input.serde.reshaping {
        if NEWTYPE_RESHAPING.contains(&key.as_str()) {
            cx.syn_error(syn::Error::new(
                *span,
                format!(
                    "#[serde({key})] makes serde write `{ident}` as another type, while `{ident}`'s diff is its field's, \
                     so the diff would not match what serde sends; remove it, or implement `storex::Diff` for `{ident}` by hand"
                ),
            ));
        }
    }
    store_on_field(cx, field);
    for (key, span) in &field.serde.reshaping {
        if NEWTYPE_FIELD_RESHAPING.contains(&key.as_str()) {
            cx.syn_error(syn::Error::new(
                *span,
                format!(
                    "#[serde({key})] cannot be used on the field of `{ident}`: `{ident}`'s diff is its field's, and this makes serde \
                     write the field otherwise than its type's own `Serialize`; remove it, or give the field a type whose own \
                     `Serialize` and `Diff` write that JSON"
                ),
            ));
        }
    }
}

/// The container keys that make serde write a newtype otherwise than as its field
/// (`transparent` writes it as its field too).
const NEWTYPE_RESHAPING: &[&str] = &["into", "remote"];

/// The field keys that make serde write a newtype's field otherwise than its type does.
const NEWTYPE_FIELD_RESHAPING: &[&str] = &["serialize_with", "with"];

fn reshaping_field_message(key: &str) -> String {
    let why = match key {
        "flatten" => "moves the field's keys into the parent object, so a diff at the field's own key would not match what serde sends; \
                      remove it (nested structs are diffed field by field anyway)",
        "skip_serializing_if" => "makes the field's key come and go, which a per-field diff does not follow; \
                                  remove it (an `Option` field is sent as `null`)",
        _ => "makes the field's JSON differ from its type's own `Serialize`, which the diff uses; \
              remove it, or give the field a newtype whose own `Serialize` and `Diff` write that JSON",
    };
    format!("#[serde({key})] cannot be used in a diffed struct: it {why}")
}

fn store_shape(cx: &mut Ctxt, input: &Input<'_>) {
    if let Shape::Union(union_token) = input.shape {
        cx.error_spanned_by(
            union_token,
            "a union cannot be a store: serde cannot write it as JSON; a store is a struct with named fields \
             (`struct Counter { counter: i64 }`), a newtype (`struct Text(String)`), a tuple or unit struct, or an enum",
        );
    }
}

pub fn mutations_args(cx: &mut Ctxt, args: proc_macro2::TokenStream) {
    if !args.is_empty() {
        cx.error_spanned_by(args, "#[storex::mutations] takes no arguments");
    }
}

pub fn impl_block(cx: &mut Ctxt, block: &Impl) {
    let item = &block.item;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            "#[storex::mutations] goes on the store's own impl (`impl Counter { .. }`), not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "a store cannot be generic: #[storex::mutations] needs an impl of one concrete store type",
        );
    }
    let mut init = None;
    let mut terminate = None;
    let mut names: Vec<&Method> = Vec::new();
    for method in &block.methods {
        self::method(cx, method);
        match &method.role {
            Role::Init => once(cx, &mut init, method, "#[init]"),
            Role::Terminate => once(cx, &mut terminate, method, "#[terminate]"),
            Role::Mutation(name) => {
                let first = names
                    .iter()
                    .find(|other| other.mutation_name().map(|n| n.value()) == Some(name.value()));
                match first {
                    Some(first) => cx.error_spanned_by(
                        name,
                        format!(
                            "two mutations are named {:?}: `fn {}` and `fn {}`; each mutation of a store needs its own name",
                            name.value(),
                            first.sig.ident,
                            method.sig.ident
                        ),
                    ),
                    None => names.push(method),
                }
            }
        }
    }
    if init.is_none() && item.trait_.is_none() {
        cx.error_spanned_by(
            &item.self_ty,
            "this store has no #[init] method; add one that creates the state, e.g. \
             `#[init] fn init() -> Self { .. }` (it may be async, take `&Session` and `&Params`, \
             and return `Init<Self>` or a `Result`)",
        );
    }
}

fn once<'a>(cx: &mut Ctxt, seen: &mut Option<&'a Method>, method: &'a Method, what: &str) {
    match seen {
        Some(first) => cx.error_spanned_by(
            &method.marker,
            format!(
                "a store has one {what} method, and `fn {}` is already it",
                first.sig.ident
            ),
        ),
        None => *seen = Some(method),
    }
}

fn method(cx: &mut Ctxt, method: &Method) {
    let sig = &method.sig;
    let type_params = sig
        .generics
        .params
        .iter()
        .any(|param| !matches!(param, syn::GenericParam::Lifetime(_)));
    if type_params {
        cx.error_spanned_by(
            &sig.generics,
            "a store's methods cannot have type parameters: the macro calls them with concrete types",
        );
    }
    match &method.role {
        Role::Init => {
            if let Some(receiver) = sig.receiver() {
                cx.error_spanned_by(
                    receiver,
                    "#[init] creates the state, so it takes no `self`; its arguments may be `&Session` and `&Params`",
                );
            }
            context_args_only(cx, method, "#[init]");
        }
        Role::Mutation(_) => receiver_ref_mut(cx, method, "a mutation"),
        Role::Terminate => {
            receiver_ref_mut(cx, method, "#[terminate]");
            context_args_only(cx, method, "#[terminate]");
        }
    }
}

fn receiver_ref_mut(cx: &mut Ctxt, method: &Method, what: &str) {
    match &method.receiver {
        Receiver::RefMut => {}
        Receiver::None => cx.error_spanned_by(
            &method.sig.ident,
            format!(
                "{what} works on the state, so it takes `&mut self` first: `fn {}(&mut self, ..)`",
                method.sig.ident
            ),
        ),
        Receiver::Other(receiver) => {
            let found = receiver.to_token_stream().to_string().replace("& ", "&");
            cx.error_spanned_by(
                receiver,
                format!("{what} takes `&mut self`, not `{found}`: it changes the state in place"),
            );
        }
    }
}

fn context_args_only(cx: &mut Ctxt, method: &Method, what: &str) {
    for arg in &method.args {
        if let Arg::Data(ty) = arg {
            cx.error_spanned_by(
                ty,
                format!(
                    "{what} may take only `&Session` and `&Params` (in any order, each optional); \
                     a client sends no data to it"
                ),
            );
        }
    }
}
